// cyclonedx-validate.js - validate CycloneDX JSON documents against the
// official CycloneDX JSON schema of their specVersion, with the validator of
// @cyclonedx/cyclonedx-library (strict JSON schema, ajv). Run with the Node
// the tests use and NODE_PATH (or AF_NPM) pointing at the installed modules:
//
//   node cyclonedx-validate.js FILE...
//
// Prints "valid FILE (CycloneDX X.Y)" per file; exit 0 when all are valid,
// 1 with the schema errors otherwise, 2 on usage errors.
'use strict'
const path = require('node:path')
const fs = require('node:fs')

const npm = process.env.AF_NPM
const CDX = require(npm ? path.join(npm, '@cyclonedx/cyclonedx-library') : '@cyclonedx/cyclonedx-library')

async function main () {
  const files = process.argv.slice(2)
  if (files.length === 0) {
    console.error('usage: node cyclonedx-validate.js FILE...')
    process.exit(2)
  }
  let bad = 0
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8')
    let doc
    try {
      doc = JSON.parse(text)
    } catch (e) {
      console.log(`invalid ${file}: not JSON: ${e.message}`)
      bad++
      continue
    }
    const version = doc.specVersion
    if (!CDX.Spec.SpecVersionDict[version]) {
      console.log(`invalid ${file}: unknown specVersion ${JSON.stringify(version)}`)
      bad++
      continue
    }
    const validator = new CDX.Validation.JsonStrictValidator(version)
    const errors = await validator.validate(text)
    if (errors === null) {
      console.log(`valid ${file} (CycloneDX ${version})`)
    } else {
      console.log(`invalid ${file}: ${JSON.stringify(errors, null, 2)}`)
      bad++
    }
  }
  process.exit(bad ? 1 : 0)
}

main().catch((e) => { console.error(e); process.exit(2) })
