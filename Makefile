# llama2: a C11 inference engine for llama2.c checkpoints.
#
#   make                 the library and programs: one binary for every CPU of the
#                        architecture, the kernels choosing their level at run time
#   make NATIVE=1        with -march=native (for this machine's CPU only)
#   make SAN=1           AddressSanitizer + UndefinedBehaviorSanitizer build
#   make BLAS=1          with the CBLAS backend (OpenBLAS; Accelerate on macOS)
#   make CUDA=1          with the CUDA backend (nvcc, cuBLAS)
#   make WINDOWS=1       llama2.exe and the tools for Windows, cross-built with
#                        MinGW-w64 (as make CC=x86_64-w64-mingw32-gcc does)
#   make test            every test (unit, golden, hostile input), installing the
#                        packages they need first (tests/packages.txt)
#   make run             a story from the default model (stories260K)
#   make bench           tokens per second on random-weight models
#   make install         the header, libraries, llama2.pc, programs and man
#                        pages under $(DESTDIR)$(PREFIX) (default /usr/local);
#                        make uninstall removes them
#   make test-windows    the Windows build's tests under Wine
#   make bench-server    llama2-server's throughput under concurrent clients
#   make soak, make churn  llama2-server under hostile clients; its memory under
#                        a churn of conversations through the prefix cache's store
#
# Builds go to build/<variant>/; the programs are linked at the top level.

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
WINDOWS ?= 0
MINGW_CC ?= x86_64-w64-mingw32-gcc
ifeq ($(WINDOWS),1)
ifneq ($(origin CC),command line)
CC := $(MINGW_CC)
endif
endif
# A compiler for Windows (MinGW-w64, or clang targeting it): .exe programs,
# platform_win32.c, no -pthread.
TARGET_WINDOWS := $(if $(filter %mingw32 %windows-gnu,$(shell $(CC) -dumpmachine 2>/dev/null)),1)

NATIVE ?= 0
SAN ?= 0
OPT ?= -O2

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
# -ffp-contract=off: no fused multiply-add unless a kernel asks for one, so
# that scalar float code evaluates exactly as llama2.c's plain C does.
# -fvisibility=hidden: a library built from these objects exports only what
# include/llama2.h marks LLAMA2_API.
BASE_CFLAGS := -std=c11 $(OPT) -g -gdwarf-4 $(WARN) -ffp-contract=off -fvisibility=hidden -D_DEFAULT_SOURCE \
	-Iinclude -Isrc
ifeq ($(TARGET_WINDOWS),1)
# The C99 printf of MinGW-w64 (%zu, %lld) rather than msvcrt's.
BASE_CFLAGS += -D__USE_MINGW_ANSI_STDIO=1
LDLIBS = $(BACKEND_LIBS) -lm -lshell32
EXE := .exe
PLATFORM := win32
# The kernels are chosen at run time, on whatever CPU runs the program.
PORTABLE := 1
else
BASE_CFLAGS += -pthread
LDLIBS = $(BACKEND_LIBS) -lm -pthread
EXE :=
PLATFORM := posix
endif

# Each compiler and option set builds into its own folder.
CC_NAME := $(notdir $(firstword $(CC)))
CC_TAG := $(if $(filter cc gcc,$(CC_NAME)),,$(CC_NAME)-)
ifeq ($(NATIVE),1)
ARCH_FLAGS := -march=native
VARIANT := $(CC_TAG)native
else
ARCH_FLAGS :=
VARIANT := $(CC_TAG)portable
endif
ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
VARIANT := $(VARIANT)-san
else
SAN_FLAGS :=
endif

BLAS ?= 0
CUDA ?= 0
UNAME_S := $(shell uname -s)
BACKEND_CFLAGS :=
BACKEND_LIBS :=
ifeq ($(BLAS),1)
VARIANT := $(VARIANT)-blas
ifeq ($(UNAME_S),Darwin)
BACKEND_CFLAGS += -DLLAMA2_WITH_BLAS -DACCELERATE_NEW_LAPACK
BACKEND_LIBS += -framework Accelerate
else
# (OPENBLAS_CFLAGS and OPENBLAS_LIBS on the command line: another place.)
ifeq ($(origin OPENBLAS_CFLAGS),undefined)
OPENBLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
endif
ifeq ($(origin OPENBLAS_LIBS),undefined)
OPENBLAS_LIBS := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
endif
BACKEND_CFLAGS += -DLLAMA2_WITH_BLAS $(OPENBLAS_CFLAGS)
BACKEND_LIBS += $(OPENBLAS_LIBS)
# Without OpenBLAS the build would end in a compiler or linker error: BLAS=1
# says which package gives it and stops (building without BLAS instead
# would not be what was asked for). Not for make clean.
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
HAVE_OPENBLAS := $(shell $(CC) $(OPENBLAS_CFLAGS) -E -include cblas.h -x c /dev/null >/dev/null 2>&1 && \
	echo 'char cblas_sgemm(void); int main(void) { return cblas_sgemm(); }' | \
	$(CC) -x c - -o /dev/null $(OPENBLAS_LIBS) >/dev/null 2>&1 && echo 1)
ifneq ($(HAVE_OPENBLAS),1)
$(error BLAS=1: OpenBLAS is not installed, or $(CC) cannot find cblas.h or link $(OPENBLAS_LIBS) (Debian and Ubuntu: apt-get install libopenblas-dev; plain make builds without BLAS))
endif
endif
endif
endif
NVCC ?= nvcc
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
# Hopper machine code plus PTX that later GPUs can compile at load time.
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCC_FLAGS := -O3 -std=c++17 $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter -Werror all-warnings -Iinclude -Isrc
ifeq ($(CUDA),1)
VARIANT := $(VARIANT)-cuda
BACKEND_CFLAGS += -DLLAMA2_WITH_CUDA
BACKEND_LIBS += -L$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
endif

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(ARCH_FLAGS) $(SAN_FLAGS) $(BACKEND_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(SAN_FLAGS) $(LDFLAGS)

BUILD := build/$(VARIANT)
LIB := $(BUILD)/libllama2.a

# The library: src/ but for the converter (a library of its own, below),
# with one platform file: platform_posix.c or platform_win32.c (platform.h).
LIB_FOLDERS := platform model run text write kernels
LIB_SRC := $(filter-out $(filter-out src/platform/platform_$(PLATFORM).c,$(wildcard src/platform/platform_*.c)),\
	$(foreach f,$(LIB_FOLDERS),$(wildcard src/$(f)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
ifeq ($(CUDA),1)
LIB_OBJ += $(BUILD)/src/run/backend_cuda.o
endif

# Conversion (src/convert/, llama2-convert) reads JSON with jansson: a
# library of its own, so that the engine and its other programs need none.
# Where jansson is not installed, llama2-convert and its test are left out
# (and said so): plain `make` works on a fresh machine; `make test` installs
# jansson first (tests/packages.txt), so the converter is built and tested.
ifeq ($(TARGET_WINDOWS),1)
HAVE_JANSSON := $(shell $(CC) -E -include jansson.h -x c /dev/null >/dev/null 2>&1 && echo 1)
else
HAVE_JANSSON := $(shell pkg-config --exists jansson 2>/dev/null && echo 1)
endif
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
# Chat line editing (cli/line_edit.c) with libedit where it is installed
# (libedit-dev; make test installs it), found as jansson is; elsewhere, and
# with LIBEDIT=0 (the static aarch64 build), chat reads plain lines.
LIBEDIT ?= $(if $(TARGET_WINDOWS),0,$(shell pkg-config --exists libedit 2>/dev/null && echo 1))
ifeq ($(LIBEDIT),1)
LIBEDIT_CFLAGS := -DLLAMA2_WITH_LIBEDIT $(shell pkg-config --cflags libedit 2>/dev/null)
LIBEDIT_LIBS := $(shell pkg-config --libs libedit 2>/dev/null || echo -ledit)
endif
CONVERT_SRC := $(wildcard src/convert/*.c)
CONVERT_OBJ := $(CONVERT_SRC:%.c=$(BUILD)/%.o)
CONVERT_LIB := $(BUILD)/libllama2-convert.a
# JSON Schema to grammars (src/schema/, jansson too): linked into llama2 and
# llama2-server where jansson is installed; llama2 --json-schema says so where not.
SCHEMA_SRC := $(wildcard src/schema/*.c)
SCHEMA_OBJ := $(SCHEMA_SRC:%.c=$(BUILD)/%.o)
SCHEMA_LIB := $(BUILD)/libllama2-schema.a

# The programs' helper library (common/), which every program links and
# none of them owns: the option parser, the number readers, the one error
# printer, the start-up from the usual flags, and child processes (one of
# child_posix.c and child_win32.c).
COMMON_SRC := $(filter-out $(filter-out common/child_$(PLATFORM).c,$(wildcard common/child_*.c)),$(wildcard common/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
COMMON_LIB := $(BUILD)/libllama2-common.a
# What includes its headers.
$(BUILD)/common/%.o $(BUILD)/cli/%.o $(BUILD)/server/%.o $(BUILD)/tools/%.o $(BUILD)/tests/%.o: ALL_CFLAGS += -Icommon

PROGRAMS := llama2
# tools/NAME.c is the program llama2-NAME; tools/bench_*.c are the parts of
# llama2-bench, linked into it rather than programs of their own.
BENCH_PARTS := $(wildcard tools/bench_*.c)
TOOL_NAMES := $(patsubst tools/%.c,%,$(filter-out $(BENCH_PARTS),$(wildcard tools/*.c)))

TEST_SRC := $(wildcard tests/test_*.c)
# The support files, with one of support_posix.c and support_win32.c.
# (Not tests/fault_alloc.c: test_alloc_failure's alone, below.)
TEST_SUPPORT := $(filter-out $(TEST_SRC) tests/fault_alloc.c $(filter-out tests/support_$(PLATFORM).c,$(wildcard tests/support_*.c)),\
	$(wildcard tests/*.c))
ifneq ($(HAVE_JANSSON),1)
TOOL_NAMES := $(filter-out convert,$(TOOL_NAMES))
TEST_SRC := $(filter-out tests/test_convert.c tests/test_json_schema.c,$(TEST_SRC))
ifeq ($(TARGET_WINDOWS),1)
WITHOUT_JANSSON := no jansson for MinGW-w64 (Debian has none)
else
WITHOUT_JANSSON := jansson is not installed (libjansson-dev; make test installs it)
endif
endif
# Tests of what Windows does not have: skipped there, by name, saying why.
POSIX_TESTS := test_chat_pty test_setup test_install test_bench test_alloc_failure
WHY_test_chat_pty := chat on a pseudo-terminal (POSIX)
WHY_test_bench := llama2-bench run with /usr/bin/env's environment (POSIX)
WHY_test_setup := the POSIX shell scripts setup.sh and models.sh
WHY_test_install := make install, with its shared library and pkg-config (POSIX)
WHY_test_alloc_failure := allocations failed through the GNU linker's --wrap, in the ELF build
ifeq ($(TARGET_WINDOWS),1)
TEST_SRC := $(filter-out $(POSIX_TESTS:%=tests/%.c),$(TEST_SRC))
NOT_BUILT_TESTS := $(foreach t,$(POSIX_TESTS),"--skipped=$(t):$(WHY_$(t))")
endif
# llama2-server (server/) speaks HTTP with libmicrohttpd and JSON with
# jansson: built, and tested, only where both are installed (make test
# installs them); plain `make` says so otherwise. It is a POSIX program
# (sockets, signals): a Windows build leaves it out, and says so.
HAVE_MHD := $(shell pkg-config --exists libmicrohttpd 2>/dev/null && echo 1)
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
SERVER_SRC := $(wildcard server/*.c)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/server/webui_html.o
# What the server's test links besides the program: the request parser.
SERVER_TEST_OBJ := $(BUILD)/server/request.o
ifeq ($(TARGET_WINDOWS),1)
WITHOUT_SERVER_LIBS := a POSIX program (sockets and signals), not built for Windows
else ifneq ($(HAVE_MHD)$(HAVE_JANSSON),11)
WITHOUT_SERVER_LIBS := libmicrohttpd or jansson is not installed (libmicrohttpd-dev, libjansson-dev; make test installs them)
endif
ifeq ($(WITHOUT_SERVER_LIBS),)
SERVER_PROGRAMS := llama2-server
else
SERVER_PROGRAMS :=
TEST_SRC := $(filter-out tests/test_server.c tests/test_alloc_failure.c,$(TEST_SRC))
ifneq ($(TARGET_WINDOWS),1)
ALLOC_FAILURE_SKIPPED := "--skipped=test_alloc_failure:$(WITHOUT_SERVER_LIBS)"
endif
endif
# test_alloc_failure needs the GNU linker's --wrap (not macOS's linker).
ifeq ($(UNAME_S),Darwin)
ifneq ($(filter tests/test_alloc_failure.c,$(TEST_SRC)),)
TEST_SRC := $(filter-out tests/test_alloc_failure.c,$(TEST_SRC))
ALLOC_FAILURE_SKIPPED := "--skipped=test_alloc_failure:it fails allocations through the GNU linker's --wrap"
endif
endif
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%$(EXE))
# test_install checks an installed tree (make test-install), not this build.
INSTALL_TEST := $(BUILD)/tests/test_install$(EXE)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)
# x86-64: the tests also link an emulated library, whose x86 kernel files
# are compiled against SIMDe (libsimde-dev, installed by make test) and
# tests/emulate_x86.h: every level (AVX-512, VNNI, AMX) then runs on any
# x86-64 CPU, and its kernels, goldens and batches are tested against the
# reference here too (test_*_emulated), beside the levels this CPU runs.
TARGET_ARCH_NAME := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine 2>/dev/null)))
# (Not under Wine, nor beside the BLAS or CUDA backends: the kernels are the
# same there, and the default build tests them.)
ifneq ($(filter x86_64 i386 i486 i586 i686,$(TARGET_ARCH_NAME)),)
ifneq ($(TARGET_WINDOWS),1)
ifneq ($(BLAS)$(CUDA),00)
EMULATED_SKIPPED := "--skipped=test_*_emulated:the emulated kernel levels are tested in the build without BLAS and CUDA"
else
EMULATED_SRC := $(wildcard src/kernels/ops_avx*.c src/kernels/ops_blocks_avx*.c src/kernels/ops_kquants_avx*.c src/kernels/ops_amx.c src/kernels/x86_features.c)
EMULATED_OBJ := $(EMULATED_SRC:%.c=$(BUILD)/emulated/%.o)
EMULATED_LIB := $(BUILD)/emulated/libllama2.a
EMULATED_TESTS := test_kernels test_blocks test_kquants test_golden test_batch
ifeq ($(SAN),1)
# Under the sanitizers the emulated goldens and batches take minutes: only
# the kernels' own tests run (their memory accesses are what the sanitizers
# check); the optimised build runs the others.
EMULATED_TESTS := test_kernels test_blocks test_kquants
EMULATED_SKIPPED := "--skipped=test_golden_emulated:the sanitized build runs only test_kernels_emulated" \
	"--skipped=test_batch_emulated:the sanitized build runs only test_kernels_emulated"
endif
EMULATED_TEST_BIN := $(EMULATED_TESTS:%=$(BUILD)/tests/%_emulated)
EMULATED_FLAGS := -DL2_EMULATED_X86 -DSIMDE_NO_NATIVE -Wno-psabi \
	$(if $(filter clang,$(CC_NAME)),,-Wno-maybe-uninitialized)
TEST_BIN += $(EMULATED_TEST_BIN)
endif
endif
endif
# make test-unit TESTS="test_backends test_golden": only those programs
# (CI's runs of the BLAS and CUDA builds, whose other tests repeat the CPU
# build's).
ifneq ($(TESTS),)
TEST_BIN := $(filter $(TESTS:%=$(BUILD)/tests/%$(EXE)),$(TEST_BIN))
endif
ifeq ($(TARGET_WINDOWS),1)
# cmocka cross-built from Debian's source package (tests/cmocka_windows.sh).
CMOCKA_DIR := $(BUILD)/cmocka
CMOCKA_LIB := $(CMOCKA_DIR)/libcmocka.a
CMOCKA_LIBS := $(CMOCKA_LIB)
else
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
endif

# Model files go to models/ (tools/models.sh): copied from $(SHARED)/models
# when it has them, else downloaded (from $$TINYLLAMAS_URL and $$LLAMA2C_URL
# when set), or made by the project's tools.
SHARED ?= ../shared
SHARED_MODELS ?= $(SHARED)/models
MODELS_DIR := models
DEFAULT_MODEL := $(MODELS_DIR)/stories260K.bin
DEFAULT_TOKENIZER := $(MODELS_DIR)/tok512.bin
# What the tests use; a test whose file is absent is skipped by name.
TEST_MODELS := stories260K.bin tok512.bin tokenizer.bin tokenizer.model stories260K_q80_gs4.bin stories260K_v1.bin \
	stories260K_q80.bin
MODELS_ENV = SHARED_MODELS=$(abspath $(SHARED_MODELS)) LLAMA2_TOOLS=$(abspath $(BUILD))
# What the test programs are told: the programs, data folders and models.
TEST_ENV = $(MODELS_ENV) LLAMA2_BIN=$(abspath $(BUILD)/llama2) LLAMA2_MODELS=$(abspath $(MODELS_DIR)) \
	LLAMA2_SOURCE=$(CURDIR) SHARED=$(abspath $(SHARED))

.PHONY: all clean test test-unit test-repeat soak churn test-san test-valgrind test-aarch64 test-windows test-packages test-models run bench bench-server \
	models FORCE libraries install uninstall test-install
# Objects that pattern rules make on the way are kept, not deleted.
.SECONDARY: $(TEST_SRC:tests/%.c=$(BUILD)/tests/%.o) $(TEST_SUPPORT_OBJ) $(TOOL_NAMES:%=$(BUILD)/tools/%.o) \
	$(COMMON_OBJ) $(TOOL_NAMES:%=$(BUILD)/llama2-%$(EXE)) $(SERVER_OBJ) $(SERVER_PROGRAMS:%=$(BUILD)/%) \
	$(EMULATED_TEST_BIN:%=%.o) $(BUILD)/tests/fault_alloc.o
all: llama2$(EXE) $(TOOL_NAMES:%=llama2-%$(EXE)) $(SERVER_PROGRAMS)
ifneq ($(HAVE_JANSSON),1)
	@echo "llama2-convert: not built: $(WITHOUT_JANSSON)"
endif
ifneq ($(WITHOUT_SERVER_LIBS),)
	@echo "llama2-server: not built: $(WITHOUT_SERVER_LIBS)"
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(CONVERT_LIB): $(CONVERT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(COMMON_LIB): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(CONVERT_OBJ) $(BUILD)/tools/convert.o $(BUILD)/tests/test_convert.o: ALL_CFLAGS += -Isrc/convert $(JANSSON_CFLAGS)

$(SCHEMA_LIB): $(SCHEMA_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(SCHEMA_OBJ): ALL_CFLAGS += $(JANSSON_CFLAGS)
ifeq ($(HAVE_JANSSON),1)
CLI_SCHEMA := $(SCHEMA_LIB)
CLI_SCHEMA_LIBS := $(JANSSON_LIBS)
$(BUILD)/cli/main.o: ALL_CFLAGS += -DLLAMA2_HAVE_SCHEMA $(JANSSON_CFLAGS)
endif

$(BUILD)/cli/line_edit.o $(BUILD)/tests/test_chat_pty.o: ALL_CFLAGS += $(LIBEDIT_CFLAGS)
$(BUILD)/llama2$(EXE): $(BUILD)/cli/main.o $(BUILD)/cli/args.o $(BUILD)/cli/line_edit.o $(CLI_SCHEMA) $(COMMON_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLI_SCHEMA_LIBS) $(LIBEDIT_LIBS) $(LDLIBS)

# The objects before the libraries, whatever order the prerequisites come in.
$(BUILD)/llama2-%$(EXE): $(BUILD)/tools/%.o $(COMMON_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)
$(BUILD)/llama2-bench$(EXE): $(BENCH_PARTS:%.c=$(BUILD)/%.o)
$(BUILD)/llama2-convert$(EXE): $(BUILD)/tools/convert.o $(COMMON_LIB) $(CONVERT_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(LDLIBS)

# ------------------------------------------------------ shared library
# The library as it is installed, in $(BUILD)/dist: a shared library with a
# soname (ELF), a static archive and llama2.pc. Both libraries export the
# LLAMA2_API functions of include/llama2.h and nothing else: the objects
# are compiled with hidden visibility (and position-independent), and the
# installed archive is one relocatable object with its hidden symbols made
# local, so that a program linking it statically can have its own l2_ names.
# The programs and tests link $(LIB), the archive of the separate objects,
# which keeps the internal functions they use.
VERSION := $(shell sed -n 's/^\#define LLAMA2_VERSION "\(.*\)"$$/\1/p' include/llama2.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
DIST := $(BUILD)/dist
SHARED_LIB := $(DIST)/libllama2.so.$(VERSION)
SONAME := libllama2.so.$(SOVERSION)
DIST_LIB := $(DIST)/libllama2.a
PC_FILE := $(DIST)/llama2.pc
# The objcopy of the compiler's own toolchain (a cross compiler's, for its objects).
OBJCOPY ?= $(shell $(CC) -print-prog-name=objcopy)

# -fno-semantic-interposition: calls inside the library to its own public
# functions may be inlined as in a program (nobody replaces them at load
# time), so that the objects compile as they would without -fPIC.
$(LIB_OBJ): ALL_CFLAGS += -fPIC -fno-semantic-interposition
NVCC_FLAGS += -Xcompiler -fPIC,-fvisibility=hidden

$(SHARED_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ $(LDLIBS)

$(DIST_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@ $(DIST)/llama2.o
	$(CC) -r -nostdlib -o $(DIST)/llama2.o $^
	$(OBJCOPY) --localize-hidden $(DIST)/llama2.o
	ar rcs $@ $(DIST)/llama2.o

# What a program needs to link the library, for pkg-config; remade whenever
# asked for, since it names the install's folders (relative to ${prefix}
# where they are under it, so that pkg-config --define-prefix can move them).
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
$(PC_FILE): llama2.pc.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_dir,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(call pc_dir,$(INCLUDEDIR))|' \
		-e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(strip $(BACKEND_LIBS) -lm -pthread)|' $< >$@

ifneq ($(TARGET_WINDOWS),1)
libraries: $(SHARED_LIB) $(DIST_LIB) $(PC_FILE)
endif

$(SERVER_OBJ) $(BUILD)/tests/test_server.o $(BUILD)/tests/test_alloc_failure.o: ALL_CFLAGS += -Iserver $(MHD_CFLAGS) $(JANSSON_CFLAGS)
# The chat page, its bytes compiled in (server/embed.sh: od and sed).
$(BUILD)/server/webui_html.c: server/webui.html server/embed.sh
	@mkdir -p $(@D)
	sh server/embed.sh $< server_webui_html > $@.tmp && mv $@.tmp $@
$(BUILD)/server/webui_html.o: $(BUILD)/server/webui_html.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/llama2-server: $(SERVER_OBJ) $(SCHEMA_LIB) $(COMMON_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(MHD_LIBS) $(JANSSON_LIBS) $(LDLIBS)
INSTALL_PROGRAMS += $(SERVER_PROGRAMS)

# The programs at the top level are copies of the last build's.
llama2$(EXE): $(BUILD)/llama2$(EXE) FORCE
	@cp $< $@
llama2-%$(EXE): $(BUILD)/llama2-%$(EXE) FORCE
	@cp $< $@
FORCE:

# The tests link the programs' helper library (child processes, the number
# reader); test_golden and test_hostile also llama2's command-line parser,
# which they drive. The objects before the libraries.
$(BUILD)/tests/%$(EXE): $(BUILD)/tests/%.o $(TEST_SUPPORT_OBJ) $(COMMON_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(CMOCKA_LIBS) $(LDLIBS)
CLI_PARSER_TESTS := test_golden test_hostile
$(CLI_PARSER_TESTS:%=$(BUILD)/tests/%$(EXE)) $(CLI_PARSER_TESTS:%=$(BUILD)/tests/%_emulated): $(BUILD)/cli/args.o
$(BUILD)/emulated/%.o: %.c | test-packages
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EMULATED_FLAGS) -include tests/emulate_x86.h -MMD -MP -c $< -o $@
$(EMULATED_LIB): $(filter-out $(EMULATED_SRC:%.c=$(BUILD)/%.o),$(LIB_OBJ)) $(EMULATED_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/tests/%_emulated.o: tests/%.c | test-packages
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EMULATED_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/tests/%_emulated: $(BUILD)/tests/%_emulated.o $(TEST_SUPPORT_OBJ) $(COMMON_LIB) $(EMULATED_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(CMOCKA_LIBS) $(LDLIBS)
$(BUILD)/tests/test_convert$(EXE): $(BUILD)/tests/test_convert.o $(TEST_SUPPORT_OBJ) $(COMMON_LIB) $(CONVERT_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(JANSSON_LIBS) $(LDLIBS)
$(BUILD)/tests/test_json_schema$(EXE): $(BUILD)/tests/test_json_schema.o $(TEST_SUPPORT_OBJ) $(SCHEMA_LIB) $(COMMON_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(JANSSON_LIBS) $(LDLIBS)
$(BUILD)/tests/test_server$(EXE): $(BUILD)/tests/test_server.o $(TEST_SUPPORT_OBJ) $(SERVER_TEST_OBJ) $(SCHEMA_LIB) $(COMMON_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(JANSSON_LIBS) $(LDLIBS)
# test_alloc_failure fails the allocation it chooses: every malloc, calloc,
# realloc, strdup, strndup and posix_memalign call of the objects it links
# (the library, the converter, the server but for its main and HTTP layer,
# the test) goes to tests/fault_alloc.c, through the GNU linker's --wrap.
# The objects are those of every other build: nothing is compiled otherwise.
FAULT_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=posix_memalign
$(BUILD)/tests/test_alloc_failure$(EXE): $(BUILD)/tests/test_alloc_failure.o $(BUILD)/tests/fault_alloc.o \
		$(TEST_SUPPORT_OBJ) $(filter-out $(BUILD)/server/main.o $(BUILD)/server/http.o,$(SERVER_OBJ)) \
		$(SCHEMA_LIB) $(COMMON_LIB) $(CONVERT_LIB) $(LIB)
	$(CC) $(ALL_LDFLAGS) $(FAULT_WRAP) -o $@ $^ $(CMOCKA_LIBS) $(JANSSON_LIBS) $(LDLIBS)

ifeq ($(TARGET_WINDOWS),1)
# cmocka for MinGW-w64, built once from Debian's source package.
$(CMOCKA_LIB):
	@CC="$(CC)" AR="$(patsubst %gcc,%ar,$(CC))" sh tests/cmocka_windows.sh $(CMOCKA_DIR)
$(TEST_SRC:tests/%.c=$(BUILD)/tests/%.o) $(TEST_SUPPORT_OBJ): ALL_CFLAGS += -I$(CMOCKA_DIR)/include
$(TEST_SRC:tests/%.c=$(BUILD)/tests/%.o) $(TEST_SUPPORT_OBJ): | $(CMOCKA_LIB)
else
# The packages the tests need (cmocka, valgrind, curl...), installed before
# any test compiles.
test-packages:
	@sh tests/setup.sh build download test
$(TEST_SRC:tests/%.c=$(BUILD)/tests/%.o) $(TEST_SUPPORT_OBJ): | test-packages
endif

$(MODELS_DIR)/%:
	@$(MODELS_ENV) sh tools/models.sh $(MODELS_DIR) $*

# Both at once, so that what is missing is said in one go, with how to
# supply it.
models:
	@$(MODELS_ENV) sh tools/models.sh $(MODELS_DIR) $(notdir $(DEFAULT_MODEL) $(DEFAULT_TOKENIZER))

run: llama2 models
	./llama2 $(DEFAULT_MODEL) -z $(DEFAULT_TOKENIZER) -i "Once upon a time"

# The tests' model files, as far as they can be had (made with this build's
# tools); what is missing is said, and its tests skip.
ifeq ($(TARGET_WINDOWS),1)
# This machine's tools make them (the Windows ones run under Wine only).
test-models:
	@$(MAKE) --no-print-directory WINDOWS=0 CC=cc test-models
else
test-models: $(TOOL_NAMES:%=$(BUILD)/llama2-%)
	@$(MODELS_ENV) sh tools/models.sh $(MODELS_DIR) $(TEST_MODELS) || true
endif

# Unit and end-to-end tests of this build variant (the tools too: their
# tests run them from the program's folder).
test-unit: $(BUILD)/llama2$(EXE) $(TOOL_NAMES:%=$(BUILD)/llama2-%$(EXE)) $(SERVER_PROGRAMS:%=$(BUILD)/%) \
		$(filter-out $(INSTALL_TEST),$(TEST_BIN)) test-models
	@$(TEST_ENV) sh tests/run.sh $(filter-out $(INSTALL_TEST),$(TEST_BIN)) $(if $(WITHOUT_JANSSON),"--skipped=test_convert:$(WITHOUT_JANSSON)" "--skipped=test_json_schema:$(WITHOUT_JANSSON)") \
		$(if $(WITHOUT_SERVER_LIBS),"--skipped=test_server:$(WITHOUT_SERVER_LIBS)") \
		$(EMULATED_SKIPPED) $(ALLOC_FAILURE_SKIPPED)

# make test-repeat TEST=test_server FILTER=graceful N=50: one test program's
# tests whose names hold FILTER (all without it) run N times in a row
# (default 10), stopping at the first run that fails or runs none.
test-repeat: $(BUILD)/llama2$(EXE) $(TOOL_NAMES:%=$(BUILD)/llama2-%$(EXE)) $(SERVER_PROGRAMS:%=$(BUILD)/%) \
		$(if $(TEST),$(BUILD)/tests/$(TEST)$(EXE)) test-models
	@test -n "$(TEST)" || { echo "make test-repeat: name the program: TEST=test_server [FILTER=graceful] [N=50]" >&2; exit 2; }
	@n=$(or $(N),10); i=0; log=$(BUILD)/tests/$(TEST).repeat.log; \
	while [ $$i -lt $$n ]; do i=$$((i + 1)); \
		$(TEST_ENV) LLAMA2_TEST_FILTER='$(if $(FILTER),*$(FILTER)*)' $(BUILD)/tests/$(TEST)$(EXE) >$$log 2>&1; rc=$$?; \
		if [ $$rc -ne 0 ] || ! grep -q '^\[  PASSED  \] [1-9]' $$log || grep -q '^\[  SKIPPED \]' $$log; then \
			cat $$log; echo "test-repeat: $(TEST) $(FILTER): run $$i of $$n failed, skipped or ran nothing"; exit 1; fi; \
	done; \
	echo "test-repeat: $(TEST) $(FILTER): $$(grep -c '^\[       OK \]' $$log) test(s), $$n runs in a row, all passed"

# make soak: llama2-server under 32 loopback clients for SOAK_SECONDS
# (tests/soak.mjs; make test runs 60 s of it). Ends as tests/run.sh does;
# skipped by name without node, the server or the model.
SOAK_SECONDS ?= 600
ifneq ($(SERVER_PROGRAMS),)
soak: $(BUILD)/llama2-server test-models
	@if ! command -v node >/dev/null 2>&1; then echo "tests: 0 passed, 0 failed, 1 skipped"; \
		echo "skipped: soak (needs node)"; \
	elif [ ! -f $(MODELS_DIR)/stories260K.bin ] || [ ! -f $(MODELS_DIR)/tok512.bin ]; then \
		echo "tests: 0 passed, 0 failed, 1 skipped"; echo "skipped: soak (needs $(MODELS_DIR)/stories260K.bin)"; \
	elif $(if $(filter 1,$(SAN)),ASAN_OPTIONS=quarantine_size_mb=0:thread_local_quarantine_size_kb=0) \
		node tests/soak.mjs $(BUILD)/llama2-server $(MODELS_DIR)/stories260K.bin $(MODELS_DIR)/tok512.bin $(SOAK_SECONDS); \
		then echo "tests: 1 passed, 0 failed, 0 skipped"; else echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; fi
else
soak:
	@echo "tests: 0 passed, 0 failed, 1 skipped"; echo "skipped: soak ($(WITHOUT_SERVER_LIBS))"
endif

# make churn: the prefix cache's RAM store under CHURN_SECONDS of new and
# returning conversations (tests/churn.mjs; make test runs 30 s of it): the
# store within --cache-ram CHURN_CACHE_MIB, the resident memory within that
# cap + weights + KV cache + CHURN_ALLOWANCE_MIB. By hand, the stories15M
# shape for 10 minutes: make churn CHURN_MODEL=bench-models/stories15M-f32.bin
# CHURN_TOKENIZER=models/tokenizer.bin CHURN_CACHE_MIB=64 CHURN_ALLOWANCE_MIB=32
CHURN_SECONDS ?= 600
CHURN_MODEL ?= $(MODELS_DIR)/stories260K.bin
CHURN_TOKENIZER ?= $(MODELS_DIR)/tok512.bin
CHURN_CACHE_MIB ?= 8
CHURN_ALLOWANCE_MIB ?= 12
ifneq ($(SERVER_PROGRAMS),)
churn: $(BUILD)/llama2-server test-models
	@if ! command -v node >/dev/null 2>&1; then echo "tests: 0 passed, 0 failed, 1 skipped"; \
		echo "skipped: churn (needs node)"; \
	elif [ ! -f $(CHURN_MODEL) ] || [ ! -f $(CHURN_TOKENIZER) ]; then \
		echo "tests: 0 passed, 0 failed, 1 skipped"; echo "skipped: churn (needs $(CHURN_MODEL) and $(CHURN_TOKENIZER))"; \
	elif node tests/churn.mjs $(BUILD)/llama2-server $(CHURN_MODEL) $(CHURN_TOKENIZER) $(CHURN_SECONDS) \
		$(CHURN_CACHE_MIB) $(CHURN_ALLOWANCE_MIB); \
		then echo "tests: 1 passed, 0 failed, 0 skipped"; else echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; fi
else
churn:
	@echo "tests: 0 passed, 0 failed, 1 skipped"; echo "skipped: churn ($(WITHOUT_SERVER_LIBS))"
endif

# The Windows build (MinGW-w64) and its tests under Wine (tests/windows.sh):
# every test program, the golden cases and the hostile inputs through the
# .exe programs; skipped by name where Wine cannot start.
ifeq ($(TARGET_WINDOWS),1)
test-windows: $(BUILD)/llama2$(EXE) $(TOOL_NAMES:%=$(BUILD)/llama2-%$(EXE)) $(TEST_BIN) test-models
	@$(TEST_ENV) sh tests/windows.sh $(BUILD) $(TEST_BIN) $(NOT_BUILT_TESTS) \
		$(if $(WITHOUT_JANSSON),"--skipped=test_convert:$(WITHOUT_JANSSON)" "--skipped=test_json_schema:$(WITHOUT_JANSSON)") \
		$(if $(WITHOUT_SERVER_LIBS),"--skipped=test_server:$(WITHOUT_SERVER_LIBS)")
else
test-windows:
	@$(MAKE) --no-print-directory WINDOWS=1 test-windows
endif

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-san:
	$(MAKE) SAN=1 OPT=-O1 test-unit

# One generation end to end under valgrind memcheck, from the portable build
# (valgrind cannot decode every instruction -march=native may emit).
ifeq ($(NATIVE)$(SAN),00)
test-valgrind: $(BUILD)/llama2
	@$(TEST_ENV) sh tests/valgrind.sh $(BUILD)/llama2
else
test-valgrind:
	@$(MAKE) --no-print-directory NATIVE=0 SAN=0 test-valgrind
endif

# Everything: optimised, sanitized, and a valgrind run (tests/all.sh).
test: test-packages
	@MAKE="$(MAKE)" sh tests/all.sh

# The aarch64 build (NEON kernels) tested here under qemu-user: needs
# gcc-aarch64-linux-gnu, qemu-user-static and libcmocka-dev:arm64.
AARCH64_CC ?= aarch64-linux-gnu-gcc
AARCH64_BUILD := build/$(notdir $(AARCH64_CC))-portable
# The program is linked statically: qemu 7.2 runs a dynamically linked one
# that starts threads but never starts them (no clone call).
test-aarch64: $(BUILD)/tests/test_golden test-models
	@$(MAKE) --no-print-directory CC=$(AARCH64_CC) NATIVE=0 SAN=0 BLAS=0 CUDA=0 $(AARCH64_BUILD)/tests/test_kernels \
		$(AARCH64_BUILD)/tests/test_blocks $(AARCH64_BUILD)/tests/test_kquants
	@$(MAKE) --no-print-directory CC=$(AARCH64_CC) NATIVE=0 SAN=0 BLAS=0 CUDA=0 LIBEDIT=0 HAVE_JANSSON=0 LDFLAGS=-static \
		BUILD=$(AARCH64_BUILD)-static $(AARCH64_BUILD)-static/llama2
	@$(TEST_ENV) sh tests/aarch64.sh $(AARCH64_BUILD) $(BUILD)

bench: all
	./llama2-bench

# ------------------------------------------------------ install, uninstall
# make install PREFIX=/usr DESTDIR=/tmp/pkg: the header, the static and
# shared libraries (libllama2.so -> libllama2.so.$(SOVERSION) ->
# libllama2.so.$(VERSION)), llama2.pc, the programs and their man pages.
# The programs are linked with the static library and need none of it at run
# time. INSTALL_PROGRAMS lists the programs: one built elsewhere in this
# Makefile adds itself to it (anywhere: the list is read when install runs,
# hence .SECONDEXPANSION), with a man page man/<name>.1.
ifeq ($(TARGET_WINDOWS),1)
# A Windows build gives the programs and the static archive $(LIB); the
# installed tree (shared library, pkg-config, man pages) is POSIX's.
libraries install uninstall test-install:
	@echo "make $@: not for a Windows build (it gives the .exe programs and $(LIB))" >&2
	@exit 2
else
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install
INSTALL_PROGRAMS += llama2 $(TOOL_NAMES:%=llama2-%)

.SECONDEXPANSION:
install: $$(addprefix $(BUILD)/,$$(INSTALL_PROGRAMS)) libraries
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 755 $(INSTALL_PROGRAMS:%=$(BUILD)/%) $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 644 include/llama2.h $(DESTDIR)$(INCLUDEDIR)
	$(INSTALL) -m 644 $(DIST_LIB) $(DESTDIR)$(LIBDIR)
	$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)
	ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libllama2.so
	$(INSTALL) -m 644 $(PC_FILE) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 $(INSTALL_PROGRAMS:%=man/%.1) $(DESTDIR)$(MANDIR)/man1

# Removes what install put in place (folders stay: others may use them).
uninstall:
	rm -f $(INSTALL_PROGRAMS:%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(INCLUDEDIR)/llama2.h \
		$(DESTDIR)$(LIBDIR)/libllama2.a $(DESTDIR)$(LIBDIR)/libllama2.so $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/$(notdir $(SHARED_LIB)) $(DESTDIR)$(PKGCONFIGDIR)/llama2.pc \
		$(INSTALL_PROGRAMS:%=$(DESTDIR)$(MANDIR)/man1/%.1)

# The install as an embedder gets it (tests/test_install.c): staged in
# $(BUILD)/stage, the examples built from there through pkg-config alone.
STAGE := $(BUILD)/stage
test-install: $(INSTALL_TEST) $(BUILD)/llama2 test-models
	@rm -rf $(STAGE)
	@$(MAKE) --no-print-directory install DESTDIR=$(abspath $(STAGE)) >/dev/null
	@$(TEST_ENV) LLAMA2_STAGE=$(abspath $(STAGE)) LLAMA2_PREFIX=$(PREFIX) LLAMA2_CC="$(CC)" MAKE="$(MAKE)" \
		sh tests/run.sh $(INSTALL_TEST)
endif

# llama2-server under 1, 4, 8 and 16 concurrent streaming clients on the
# stories110M shape, fp32 and int8 (tools/bench_server.mjs, with node).
bench-server: all $(MODELS_DIR)/tokenizer.bin
	@command -v node >/dev/null || { echo "bench-server: needs node"; exit 1; }
	@test -x llama2-server || { echo "llama2-server: not built: $(WITHOUT_SERVER_LIBS)"; exit 1; }
	./llama2-bench --shapes stories110M --models-only --models bench-models
	node tools/bench_server.mjs --models bench-models

clean:
	rm -rf build llama2 llama2-* llama2.exe

-include $(shell find build -name '*.d' 2>/dev/null)

# libFuzzer targets: make fuzz, make fuzz-smoke (fuzz/fuzz.mk)
-include fuzz/fuzz.mk
