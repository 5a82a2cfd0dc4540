# codegen/codegen.mk - included by the top-level Makefile after LIBGEN.
#
# Embeds the guest library sources into libaf_codegen.a: embed.sh turns them
# into $(BUILD)/gen/guest_embed.c (od + sed only), compiled like any other
# object and added to GEN_EXTRA_OBJ. The order below is the order of
# gen_embedded_files[] and of the guest digest.

GEN_GUEST_FILES := \
	af_guest.h=codegen/guest/af_guest.h \
	af_guest.c=codegen/guest/af_guest.c \
	af_json.c=codegen/guest/af_json.c \
	af_native.c=codegen/guest/af_native.c \
	art/wasm.h=artifacts/include/art/wasm.h \
	art/utf8.h=artifacts/include/art/utf8.h

GEN_GUEST_SRCS := $(foreach f,$(GEN_GUEST_FILES),$(word 2,$(subst =, ,$(f))))
GEN_EMBED_C    := $(BUILD)/gen/guest_embed.c
GEN_EMBED_O    := $(BUILD)/gen/guest_embed.o

GEN_EXTRA_OBJ += $(GEN_EMBED_O)

$(GEN_EMBED_C): $(GEN_GUEST_SRCS) codegen/embed.sh codegen/codegen.mk
	@mkdir -p $(dir $@)
	sh codegen/embed.sh $@ $(GEN_GUEST_FILES)

$(GEN_EMBED_O): $(GEN_EMBED_C) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@
