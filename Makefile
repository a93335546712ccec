# memscope - one non-recursive Makefile; every output goes under $(O)/.
#
#   make              build the library, the tools and the recorder
#   make test         install missing Debian packages, build, run every test
#   make demo         install missing packages, build, record the demo program
#   make bench        overhead and throughput benchmarks (ratios, side by side)
#   make install      PREFIX=/usr/local DESTDIR=
#
# Options: SANITIZE=address,undefined (tools and tests; never the preload
# library, which ASan cannot run inside), WERROR=1 (CI), O=build.
#
# New sources need no edit here: libtrace/*.c, tools/common/*.c,
# tools/<tool>/*.c, tools/ms-record/preload/*.c, tests/unit/test_*.c,
# tests/programs/*.c|*.cc, tests/fuzz/fuzz_*.c and tests/tools/*.c are found
# by wildcard.

O ?= build
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib/memscope
INCDIR = $(PREFIX)/include/memscope
MANDIR = $(PREFIX)/share/man
DATADIR = $(PREFIX)/share/memscope

CC ?= cc
CXX ?= c++
PKG_CONFIG ?= pkg-config

CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
       -Wmissing-prototypes -Wformat=2 -Wundef -Wvla -Wno-sign-compare
ifdef WERROR
WARN += -Werror
endif
BASE_CFLAGS = -std=gnu11 $(WARN) -fPIC -D_GNU_SOURCE -MMD -MP \
	      -Ilibtrace -Itools/common -Itools/ms-record/include
ifdef SANITIZE
SAN_FLAGS = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif

pc = $(shell $(PKG_CONFIG) $(1) $(2) 2>/dev/null)
ZSTD_CFLAGS   := $(call pc,--cflags,libzstd)
ZSTD_LIBS     := $(call pc,--libs,libzstd)
CJSON_CFLAGS  := $(call pc,--cflags,libcjson)
CJSON_LIBS    := $(call pc,--libs,libcjson)
CAIRO_CFLAGS  := $(call pc,--cflags,cairo)
CAIRO_LIBS    := $(call pc,--libs,cairo)
DW_CFLAGS     := $(call pc,--cflags,libdw)
DW_LIBS       := $(call pc,--libs,libdw)
DEFLATE_LIBS  := $(call pc,--libs,libdeflate)
UNWIND_CFLAGS := $(call pc,--cflags,libunwind)

ALL_CFLAGS = $(BASE_CFLAGS) $(ZSTD_CFLAGS) $(CJSON_CFLAGS) $(CAIRO_CFLAGS) \
	     $(DW_CFLAGS) $(UNWIND_CFLAGS) $(CFLAGS)

# ---- libtrace: the format, the reader, the writer, the model, symbols ----
LIB_SRC := $(wildcard libtrace/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(O)/%.o)
LIB_A := $(O)/libmstrace.a
LIB_LIBS = $(ZSTD_LIBS) $(DW_LIBS) $(DEFLATE_LIBS) -lm

# A copy of libtrace built without sanitizers, for the preload library.
LIB_PIC_OBJ := $(LIB_SRC:%.c=$(O)/pic/%.o)
LIB_PIC_A := $(O)/pic/libmstrace.a

COMMON_SRC := $(wildcard tools/common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(O)/%.o)
COMMON_A := $(O)/libmscommon.a

# ---- tools: one folder each, *.c linked into one binary ----
TOOLS := $(notdir $(patsubst %/,%,$(dir $(wildcard tools/*/main.c))))
TOOL_BINS := $(TOOLS:%=$(O)/bin/%)
LIBS_ms-stats  = $(CJSON_LIBS)
LIBS_ms-convert = $(CJSON_LIBS)
LIBS_ms-svg    = $(CAIRO_LIBS) $(CJSON_LIBS)
LIBS_ms-html   = $(CJSON_LIBS)
LIBS_ms-record =
LIBS_memscope  =

# ---- the recorder's preload library ----
PRELOAD_SRC := $(wildcard tools/ms-record/preload/*.c)
PRELOAD_OBJ := $(PRELOAD_SRC:%.c=$(O)/pic/%.o)
PRELOAD_SO := $(O)/lib/libmsrecord.so
PRELOAD_LIBS = $(ZSTD_LIBS) -ldl -lpthread -lm

# ---- tests ----
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/unit/%)
UNIT_HELPERS := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
PROG_C := $(wildcard tests/programs/*.c)
PROG_CC := $(wildcard tests/programs/*.cc)
PROG_BINS := $(PROG_C:tests/programs/%.c=$(O)/tests/programs/%) \
	     $(PROG_CC:tests/programs/%.cc=$(O)/tests/programs/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(O)/tests/fuzz/%)
TTOOL_SRC := $(wildcard tests/tools/*.c)
TTOOL_BINS := $(TTOOL_SRC:tests/tools/%.c=$(O)/tests/tools/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(O)/bench/%)

ALL_LIBS = $(LIB_LIBS) $(CJSON_LIBS) $(CAIRO_LIBS) -lpthread -ldl

.PHONY: all test check demo bench install uninstall clean deps test-bins fuzz
all: $(LIB_A) $(TOOL_BINS) $(if $(PRELOAD_SRC),$(PRELOAD_SO))

test-bins: all $(UNIT_BINS) $(PROG_BINS) $(FUZZ_BINS) $(TTOOL_BINS)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(O)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fvisibility=hidden -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIB_PIC_A): $(LIB_PIC_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(COMMON_A): $(COMMON_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^ $(if $(COMMON_OBJ),,$(error no tools/common sources))

define tool_rule
$(1)_OBJ := $$(patsubst %.c,$(O)/%.o,$$(wildcard tools/$(1)/*.c))
$(O)/bin/$(1): $$($(1)_OBJ) $(COMMON_A) $(LIB_A)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(SAN_FLAGS) -o $$@ $$($(1)_OBJ) $(COMMON_A) $(LIB_A) $$(LIBS_$(1)) $$(LIB_LIBS) $$(LDFLAGS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

$(PRELOAD_SO): $(PRELOAD_OBJ) $(LIB_PIC_A) $(wildcard tools/ms-record/preload/*.map)
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) -o $@ $(PRELOAD_OBJ) $(LIB_PIC_A) $(PRELOAD_LIBS) \
	  $(if $(wildcard tools/ms-record/preload/exports.map),-Wl$(comma)--version-script=tools/ms-record/preload/exports.map) \
	  -Wl,-z,nodelete $(LDFLAGS)
comma := ,

$(O)/tests/unit/%: tests/unit/%.c $(UNIT_HELPERS) $(LIB_A) $(COMMON_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(UNIT_HELPERS) $(LIB_A) $(COMMON_A) $(ALL_LIBS) $(LDFLAGS)

$(O)/tests/tools/%: tests/tools/%.c $(LIB_A) $(COMMON_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $< $(LIB_A) $(COMMON_A) $(ALL_LIBS) $(LDFLAGS)

$(O)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/replay_driver.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $< tests/fuzz/replay_driver.c $(LIB_A) $(ALL_LIBS) $(LDFLAGS)

# Test programs are the traced subjects: plain -O0 builds with frame
# pointers, no sanitizer (it would replace malloc).
PROG_FLAGS = -O0 -g -fno-omit-frame-pointer -Wall -Itools/ms-record/include -pthread
$(O)/tests/programs/%: tests/programs/%.c
	@mkdir -p $(@D)
	$(CC) $(PROG_FLAGS) $(PROG_EXTRA) -o $@ $< -ldl

# a position-dependent program that takes malloc's address (as python3 does)
$(O)/tests/programs/malloc_pointer: PROG_EXTRA = -fno-pie -no-pie

$(O)/tests/programs/%: tests/programs/%.cc
	@mkdir -p $(@D)
	$(CXX) $(PROG_FLAGS) -o $@ $< -ldl

$(O)/bench/%: bench/%.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O2 -pthread -o $@ $< $(LIB_A) $(ALL_LIBS) $(LDFLAGS)

# make fuzz: libFuzzer builds (clang) of tests/fuzz/fuzz_*.c, each run for
# FUZZ_TIME seconds from its committed corpus; new inputs go to
# $(O)/fuzz/NAME.corpus, crashing ones to $(O)/fuzz/NAME-crash-*.
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_FLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
	     -Ilibtrace -Itools/common $(ZSTD_CFLAGS) $(DW_CFLAGS)
fuzz:
	@mkdir -p $(O)/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  $(FUZZ_CC) $(FUZZ_FLAGS) -o $(O)/fuzz/$$n $$f $(LIB_SRC) $(LIB_LIBS) -lpthread || exit 1; \
	  mkdir -p $(O)/fuzz/$$n.corpus; \
	  $(O)/fuzz/$$n -max_total_time=$(FUZZ_TIME) -artifact_prefix=$(O)/fuzz/$$n- \
	    $(O)/fuzz/$$n.corpus tests/fuzz/corpus/$${n#fuzz_} || exit 1; \
	done

deps:
	@scripts/install-deps.sh

test: deps
	$(MAKE) test-bins
	@scripts/run-tests.sh $(O)

check: test

demo: deps
	$(MAKE) all $(O)/tests/programs/demo
	@scripts/demo.sh $(O)

bench: deps
	$(MAKE) all test-bins $(BENCH_BINS)
	@bench/run.sh $(O)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR)/schema
	install -m 755 $(TOOL_BINS) $(DESTDIR)$(BINDIR)
	$(if $(PRELOAD_SRC),install -m 755 $(PRELOAD_SO) $(DESTDIR)$(LIBDIR))
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)
	install -m 644 libtrace/mstrace*.h $(DESTDIR)$(INCDIR)
	$(if $(wildcard tools/ms-record/include/memscope.h),install -m 644 tools/ms-record/include/memscope.h $(DESTDIR)$(INCDIR))
	$(if $(wildcard man/*.1),install -m 644 $(wildcard man/*.1) $(DESTDIR)$(MANDIR)/man1)
	install -m 644 $(wildcard schema/*) $(DESTDIR)$(DATADIR)/schema

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%)
	rm -rf $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(DATADIR)

clean:
	rm -rf $(O)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
