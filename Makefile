# longrange: libcore and the programs built on it.
#   make            lib/libcore.a and every program in bin/
#   make test       the whole suite; ends with "N passed, N failed"
#   make asan       the suite again under ASan+UBSan (separate build in build/asan)
#   make fuzz       libFuzzer targets (clang), each run for FUZZ_SECONDS
#   make bench      benchmark tables (peers such as OpenBLAS linked here only)
#   make CUDA=1     adds the CUDA backend (nvcc from the CUDA Toolkit)
#   make install PREFIX=/usr/local

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
BIN      ?= bin
LIBCORE  ?= lib/libcore.a
PKG_CONFIG ?= pkg-config

# Shared libraries the programs use, found through pkg-config.
PKGS     := zlib libpng
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN_FLAGS) -pthread -fno-strict-aliasing \
             -Ilib/include -Ilib/src -Icmd/common $(PKG_CFLAGS) $(CUDA_DEFS)
LDLIBS   := $(PKG_LIBS) -lm -pthread

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

# Kernel variants: compiled with their own instruction-set flags, chosen at run time.
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c

LIB_SRC  := $(wildcard lib/src/*.c) $(wildcard lib/src/cpu/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)

ifeq ($(CUDA),1)
NVCC     ?= nvcc
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
CUDA_DEFS := -DLR_CUDA
CUDA_SRC := $(wildcard lib/src/cuda/*.cu)
LIB_OBJ  += $(CUDA_SRC:%.cu=$(BUILD)/%.o)
LDLIBS   += -L$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
endif

COMMON_SRC := $(wildcard cmd/common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)

TOOLS    := $(filter-out common,$(notdir $(patsubst %/,%,$(wildcard cmd/*/))))
PROGS    := $(TOOLS:%=$(BIN)/%)

TEST_SRC := $(wildcard tests/unit/test_*.c)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_STANDALONE := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/%)

.PHONY: all test asan fuzz bench install clean
all: $(LIBCORE) $(PROGS)

.SECONDEXPANSION:
# Keep generated objects and assembly between runs (they are intermediates of pattern rules).
.SECONDARY:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/lib/src/cpu/%_avx2.o: lib/src/cpu/%_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/lib/src/cpu/%_avx512.o: lib/src/cpu/%_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/lib/src/cuda/%.o: lib/src/cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 -Ilib/include -Ilib/src -DLR_CUDA -Xcompiler -fPIC -c $< -o $@

$(LIBCORE): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# Embedded default models: cmd/<tool>/models lists model files (first = default); a generated
# assembly file pulls them into the binary with .incbin.
$(BUILD)/embed/%.S: tools/embed.sh $$(wildcard cmd/$$*/models) $$(shell cat cmd/$$*/models 2>/dev/null)
	@mkdir -p $(dir $@)
	sh tools/embed.sh $(wildcard cmd/$*/models) > $@

$(BUILD)/embed/%.o: $(BUILD)/embed/%.S
	$(CC) -c $< -o $@

# A program that needs more libraries than PKGS lists their pkg-config names in cmd/<tool>/pkgs
# (video-animate: FFmpeg's); only that program and the tests of its sources link them.
pkgs_of_dirs = $(sort $(foreach d,$(1),$(shell cat $(d)pkgs 2>/dev/null)))
pkg_libs = $(if $(1),$(shell $(PKG_CONFIG) --libs $(1)))
$(foreach t,$(TOOLS),$(if $(wildcard cmd/$(t)/pkgs),$(eval \
  $(BUILD)/cmd/$(t)/%.o: ALL_CFLAGS += $(shell $(PKG_CONFIG) --cflags $(call pkgs_of_dirs,cmd/$(t)/)))))

tool_objs = $(patsubst %.c,$(BUILD)/%.o,$(wildcard cmd/$(1)/*.c))
$(BIN)/%: $$(call tool_objs,$$*) $(BUILD)/embed/%.o $(COMMON_OBJ) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) $(call pkg_libs,$(call pkgs_of_dirs,cmd/$*/)) -o $@

# Unit tests link libcore and cmd/common; tests/unit/test_embed also embeds a fixture model, and
# tests/unit/test_X.srcs names a program's sources a test links as well (one per line).
test_srcs = $(shell cat tests/unit/test_$(1).srcs 2>/dev/null)
test_objs = $(patsubst %.c,$(BUILD)/%.o,$(call test_srcs,$(1)))
$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $$(call test_objs,$$*) $(BUILD)/embed/test_$$*.o $(COMMON_OBJ) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) $(call pkg_libs,$(call pkgs_of_dirs,$(dir $(call test_srcs,$*)))) -o $@

$(BUILD)/embed/test_%.S: tools/embed.sh $$(wildcard tests/unit/test_$$*.models) $$(shell cat tests/unit/test_$$*.models 2>/dev/null)
	@mkdir -p $(dir $@)
	sh tools/embed.sh $(wildcard tests/unit/test_$*.models) > $@

# Fuzz targets also build as plain programs that replay a corpus (part of make test);
# tests/fuzz/fuzz_X.srcs names program sources a target links, as for unit tests.
fuzz_srcs = $(shell cat tests/fuzz/fuzz_$(1).srcs 2>/dev/null)
fuzz_objs = $(patsubst %.c,$(BUILD)/%.o,$(call fuzz_srcs,$(1)))
fuzz_libs = $(call pkg_libs,$(call pkgs_of_dirs,$(dir $(call fuzz_srcs,$(1)))))
$(BUILD)/tests/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $$(call fuzz_objs,$$*) $(BUILD)/tests/fuzz/replay.o $(BUILD)/embed/test_none.o $(COMMON_OBJ) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) $(call fuzz_libs,$*) -o $@

test: all $(TESTS) $(FUZZ_STANDALONE)
	@BIN=$(BIN) BUILD=$(BUILD) sh tests/run.sh

asan:
	$(MAKE) BUILD=build/asan BIN=build/asan/bin LIBCORE=build/asan/libcore.a SAN=1 CFLAGS="-O1 -g" test

# libFuzzer needs clang; each target gets its own corpus directory (ignored by git), seeded
# from the committed corpus.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
              -Ilib/include -Ilib/src -Icmd/common $(PKG_CFLAGS) -pthread
fuzz:
	$(MAKE) BUILD=build/fuzz LIBCORE=build/fuzz/libcore.a CC=clang SAN_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" CFLAGS="-O1 -g" build/fuzz/libcore.a $(COMMON_SRC:%.c=build/fuzz/%.o) build/fuzz/embed/test_none.o
	@set -e; for src in $(FUZZ_SRC); do \
	  name=$$(basename $$src .c); \
	  srcs=$$(cat tests/fuzz/$$name.srcs 2>/dev/null || true); libs=; \
	  for s in $$srcs; do d=$$(dirname $$s); if [ -f $$d/pkgs ]; then libs="$$libs $$($(PKG_CONFIG) --libs $$(cat $$d/pkgs))"; fi; done; \
	  clang $(FUZZ_CFLAGS) $$src $$srcs $(COMMON_SRC:%.c=build/fuzz/%.o) build/fuzz/embed/test_none.o build/fuzz/libcore.a $(LDLIBS) $$libs -o build/fuzz/$$name; \
	  mkdir -p tests/fuzz/corpus-$$name; \
	  echo "== $$name ($(FUZZ_SECONDS) s)"; \
	  build/fuzz/$$name -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=1024 \
	    -print_final_stats=1 tests/fuzz/corpus-$$name tests/fuzz/seeds/$${name#fuzz_}; \
	done

# Benchmarks: peers (OpenBLAS, ...) are linked here and nowhere else.
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCHES   := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
BENCH_PEER_CFLAGS := $(shell $(PKG_CONFIG) --exists openblas 2>/dev/null && echo "-DHAVE_OPENBLAS $$($(PKG_CONFIG) --cflags openblas)")
BENCH_PEER_LIBS   := $(shell $(PKG_CONFIG) --libs openblas 2>/dev/null)
BENCH_PEER_CFLAGS += $(shell $(PKG_CONFIG) --exists fftw3f 2>/dev/null && echo "-DHAVE_FFTW3F $$($(PKG_CONFIG) --cflags fftw3f)")
BENCH_PEER_LIBS   += $(shell $(PKG_CONFIG) --libs fftw3f 2>/dev/null)
$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/embed/test_none.o $(COMMON_OBJ) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O3 $(BENCH_PEER_CFLAGS) $^ $(BENCH_PEER_LIBS) $(LDLIBS) -o $@
bench: all $(BENCHES)
	@set -e; for b in $(BENCHES); do $$b; done; for s in $(wildcard tests/bench/*.sh); do BIN=$(BIN) sh $$s; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/longrange \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIBCORE) $(DESTDIR)$(PREFIX)/lib
	install -m 644 lib/include/longrange/*.h $(DESTDIR)$(PREFIX)/include/longrange
	install -m 644 man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	if ls man/man5/*.5 >/dev/null 2>&1; then install -d $(DESTDIR)$(PREFIX)/share/man/man5; \
	  install -m 644 man/man5/*.5 $(DESTDIR)$(PREFIX)/share/man/man5; fi

clean:
	rm -rf $(BUILD) $(BIN) $(LIBCORE)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
