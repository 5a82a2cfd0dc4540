// validate-k8s.mjs - validate Kubernetes objects offline against the API
// schemas (npm kubernetes-models: the Kubernetes OpenAPI definitions as JSON
// schemas, and @kubernetes-models/prometheus-operator for the CRDs).
//
//   node validate-k8s.mjs OBJECTS.json
//
// OBJECTS.json is a JSON array of objects (helm template output converted
// from YAML). Prints one line per object; exits 1 if any is invalid or of a
// kind it has no schema for, 2 on bad usage.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

// the node_modules holding the models (make npm-deps installs them)
const npm = process.env.AF_NPM;
if (!npm) {
  console.error("validate-k8s.mjs: AF_NPM must point at the node_modules directory");
  process.exit(2);
}

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate-k8s.mjs OBJECTS.json");
  process.exit(2);
}
const objects = JSON.parse(readFileSync(file, "utf8"));
let bad = 0;

function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const rel = group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}.js`
    : group ? `kubernetes-models/${group}/${version}/${kind}.js` : `kubernetes-models/${version}/${kind}.js`;
  return pathToFileURL(`${npm}/${rel}`).href;
}

for (const obj of objects) {
  const id = `${obj?.kind}/${obj?.metadata?.name}`;
  if (!obj || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
    console.log(`INVALID ${id}: no apiVersion or kind`);
    bad++;
    continue;
  }
  let Model;
  try {
    Model = (await import(modulePath(obj.apiVersion, obj.kind)))[obj.kind];
  } catch (e) {
    console.log(`INVALID ${id}: no schema for ${obj.apiVersion} ${obj.kind} (${e.code || e.message})`);
    bad++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok ${obj.apiVersion} ${id}`);
  } catch (e) {
    console.log(`INVALID ${obj.apiVersion} ${id}: ${e.message}`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
