# Fuzz targets for libFuzzer (clang), included from the Makefile:
#
#   make fuzz                      build/fuzz/fuzz_<target> for every target
#   make fuzz-corpus               the generated seed corpora, build/fuzz/corpus/<target>
#   make fuzz-smoke                each target for FUZZ_SECONDS (default 60), one
#                                  after the other; fails on any crash
#   make fuzz-run FUZZ_TARGET=encode FUZZ_SECONDS=3600
#                                  one target, with the same options
#
# Crash inputs are written to build/fuzz/artifacts/<target>/. The library is
# rebuilt here with clang and -fsanitize=fuzzer-no-link,address,undefined
# (build/fuzz/obj), apart from the normal builds.

_fuzz_saved_goal := $(.DEFAULT_GOAL)

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR := build/fuzz
FUZZ_TARGETS := checkpoint gguf tokenizer encode decode args safetensors sentencepiece grammar
# llama2-server's request parser (server/request.c, with jansson), where the
# server's libraries are installed.
ifeq ($(shell pkg-config --exists jansson libmicrohttpd 2>/dev/null && echo 1),1)
FUZZ_TARGETS += server_request
endif
# The JSON Schema converter (src/schema/, with jansson), where jansson is installed.
ifeq ($(shell pkg-config --exists jansson 2>/dev/null && echo 1),1)
FUZZ_TARGETS += json_schema
endif
# Targets of the conversion module (src/convert/, with jansson).
FUZZ_CONVERT_TARGETS := safetensors sentencepiece
# The tokenizers the encode and decode targets and the corpus need.
FUZZ_MODELS ?= $(abspath $(MODELS_DIR))
# FUZZ_SAN_EXTRA: more sanitizer flags, e.g. -fno-sanitize=float-cast-overflow
# to look past a known finding (after `rm -rf build/fuzz/obj`).
FUZZ_SAN_EXTRA ?=
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer $(FUZZ_SAN_EXTRA)
FUZZ_CFLAGS := -std=c11 -O1 -g -Wall -Wextra -Wno-unused-parameter -ffp-contract=off -D_DEFAULT_SOURCE \
	-Iinclude -Isrc -Isrc/convert -Icli -Icommon -Iserver -Ifuzz -pthread $(FUZZ_SAN) \
	$(shell pkg-config --cflags jansson 2>/dev/null)
FUZZ_JANSSON_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
FUZZ_LIB_SRC := $(LIB_SRC) cli/args.c $(COMMON_SRC)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_CONVERT_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(wildcard src/convert/*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_CORPUS := $(FUZZ_DIR)/corpus

# Per-target options: encode takes long texts; a model may need a moment.
FUZZ_OPTS_checkpoint := -max_len=65536 -timeout=20
FUZZ_OPTS_gguf := -max_len=65536 -timeout=20
FUZZ_OPTS_tokenizer := -max_len=8192 -timeout=10
FUZZ_OPTS_encode := -max_len=100000 -timeout=10
FUZZ_OPTS_decode := -max_len=4096 -timeout=10
FUZZ_OPTS_args := -max_len=1024 -timeout=10
FUZZ_OPTS_safetensors := -max_len=65536 -timeout=10
FUZZ_OPTS_sentencepiece := -max_len=65536 -timeout=10
FUZZ_OPTS_server_request := -max_len=16384 -timeout=10
FUZZ_OPTS_grammar := -max_len=8192 -timeout=10
FUZZ_OPTS_json_schema := -max_len=8192 -timeout=10

.PHONY: fuzz fuzz-corpus fuzz-smoke fuzz-run
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_CONVERT_OBJ) $(FUZZ_DIR)/obj/server/request.o $(FUZZ_DIR)/obj/server/response.o \
	$(FUZZ_DIR)/obj/src/schema/json_schema.o

fuzz: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(filter %.o,$^) -lm -pthread $(FUZZ_EXTRA_LIBS)
$(FUZZ_CONVERT_TARGETS:%=$(FUZZ_DIR)/fuzz_%): $(FUZZ_CONVERT_OBJ)
$(FUZZ_CONVERT_TARGETS:%=$(FUZZ_DIR)/fuzz_%): FUZZ_EXTRA_LIBS = $(FUZZ_JANSSON_LIBS)
$(FUZZ_DIR)/fuzz_server_request: $(FUZZ_DIR)/obj/server/request.o $(FUZZ_DIR)/obj/server/response.o \
	$(FUZZ_DIR)/obj/src/schema/json_schema.o
$(FUZZ_DIR)/fuzz_server_request: FUZZ_EXTRA_LIBS = $(FUZZ_JANSSON_LIBS)
$(FUZZ_DIR)/fuzz_json_schema: $(FUZZ_DIR)/obj/src/schema/json_schema.o
$(FUZZ_DIR)/fuzz_json_schema: FUZZ_EXTRA_LIBS = $(FUZZ_JANSSON_LIBS)

# The seed models are written by the library's checkpoint writer.
$(FUZZ_DIR)/make_corpus: fuzz/make_corpus.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -o $@ $< $(FUZZ_LIB_OBJ) -lm -pthread

fuzz-corpus: $(FUZZ_DIR)/make_corpus $(MODELS_DIR)/tok512.bin $(MODELS_DIR)/tokenizer.bin $(MODELS_DIR)/tokenizer.model
	$(FUZZ_DIR)/make_corpus $(FUZZ_CORPUS) $(FUZZ_MODELS)

# One target: $(1). The corpus directory collects what the run finds.
define fuzz_run_one
	@mkdir -p $(FUZZ_CORPUS)/$(1) $(FUZZ_DIR)/artifacts/$(1)
	@echo "fuzz_$(1): $(FUZZ_SECONDS) s"
	LLAMA2_MODELS=$(FUZZ_MODELS) $(FUZZ_DIR)/fuzz_$(1) $(FUZZ_OPTS_$(1)) -max_total_time=$(FUZZ_SECONDS) \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)/ $(FUZZ_CORPUS)/$(1)

endef

fuzz-smoke: fuzz fuzz-corpus
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run_one,$(t)))

FUZZ_TARGET ?= checkpoint
fuzz-run: $(FUZZ_DIR)/fuzz_$(FUZZ_TARGET) fuzz-corpus
	$(call fuzz_run_one,$(FUZZ_TARGET))

-include $(wildcard $(FUZZ_DIR)/obj/*/*.d $(FUZZ_DIR)/obj/*/*/*.d)

.DEFAULT_GOAL := $(_fuzz_saved_goal)
