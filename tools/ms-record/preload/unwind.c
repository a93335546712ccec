/*
 * unwind.c - the recorder's own DWARF unwinder, for the hot path of
 * --unwind dwarf. It walks the program's stack with the call-frame
 * information (.eh_frame) of each return address, interpreted once per
 * address and kept in a per-thread cache as a small rule:
 *   CFA = rsp or rbp + offset; return address at CFA + k (k = -8);
 *   rbp saved at CFA + j, or kept, or lost; the caller's rsp is the CFA.
 * A cached step is then a hash probe and two loads, where libunwind's
 * unw_backtrace costs hundreds of instructions per stack even with its
 * caches (cursor set-up, its own per-frame lookups).
 *
 * Whatever it does not model (signal frames, DWARF expressions, a CFA in
 * another register, a frame without CFI, a read outside the thread's
 * stack) makes stack_capture() fall back to libunwind for that stack: the
 * stacks are what libunwind gives. MEMSCOPE_DWARF_CHECK=1 unwinds every
 * stack both ways and reports differences (the tests use it);
 * MEMSCOPE_DWARF_CFI=0 turns this unwinder off.
 *
 * Reads are bounded to the part of the thread's stack above the hook's
 * frame, so a stale or wrong rule can give a wrong frame, never a fault.
 */
#include <link.h>
#include <string.h>

#include "recorder.h"

/* x86-64 DWARF register numbers */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

enum { R_SAME, R_OFFSET, R_UNDEF, R_OTHER };

struct reg_rules {
	int cfa_reg;            /* REG_RSP, REG_RBP, or -1: expression/other */
	int64_t cfa_off;
	int rbp_how, ra_how, rsp_how;
	int64_t rbp_off, ra_off;
};

static inline uint64_t rd_uleb(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	unsigned shift = 0;

	while (p < end) {
		uint8_t b = *p++;

		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	*pp = p;
	return v;
}

static inline int64_t rd_sleb(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0;

	while (p < end) {
		b = *p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (shift < 64 && (b & 0x40))
		v |= ~(uint64_t)0 << shift;
	*pp = p;
	return (int64_t)v;
}

/* A pointer in DW_EH_PE encoding ENC; DEREF: follow an indirect one.
 * Returns -1 for encodings not used on x86-64 Linux. */
static int rd_enc(const uint8_t **pp, const uint8_t *end, uint8_t enc,
		  uintptr_t datarel, int deref, uintptr_t *out)
{
	const uint8_t *p = *pp;
	uintptr_t base, v;

	if (enc == 0xff)
		return -1;
	switch (enc & 0x70) {
	case 0x00: base = 0; break;
	case 0x10: base = (uintptr_t)p; break;
	case 0x30: base = datarel; break;
	default: return -1;
	}
	switch (enc & 0x0f) {
	case 0x00:
	case 0x04:
	case 0x0c: {
		uint64_t x;

		if (end - p < 8)
			return -1;
		memcpy(&x, p, 8);
		p += 8;
		v = (uintptr_t)x;
		break;
	}
	case 0x01: v = (uintptr_t)rd_uleb(&p, end); break;
	case 0x09: v = (uintptr_t)rd_sleb(&p, end); break;
	case 0x02:
	case 0x0a: {
		uint16_t x;

		if (end - p < 2)
			return -1;
		memcpy(&x, p, 2);
		p += 2;
		v = (enc & 0x08) ? (uintptr_t)(int64_t)(int16_t)x : x;
		break;
	}
	case 0x03:
	case 0x0b: {
		uint32_t x;

		if (end - p < 4)
			return -1;
		memcpy(&x, p, 4);
		p += 4;
		v = (enc & 0x08) ? (uintptr_t)(int64_t)(int32_t)x : x;
		break;
	}
	default:
		return -1;
	}
	v += base;
	if ((enc & 0x80) && deref)
		v = *(const uintptr_t *)v;
	*pp = p;
	*out = v;
	return 0;
}

/* ---- finding the FDE of an address ---- */

struct find {
	uintptr_t pc;
	const uint8_t *hdr;     /* .eh_frame_hdr of the object holding pc */
};

static int find_obj(struct dl_phdr_info *info, size_t size, void *data)
{
	struct find *f = data;
	const ElfW(Phdr) *eh = NULL;
	int i, in = 0;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD) {
			uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

			if (f->pc >= lo && f->pc < lo + ph->p_memsz)
				in = 1;
		} else if (ph->p_type == PT_GNU_EH_FRAME) {
			eh = ph;
		}
	}
	if (!in)
		return 0;
	if (eh)
		f->hdr = (const uint8_t *)(info->dlpi_addr + eh->p_vaddr);
	return 1;
}

/* The FDE covering PC via the object's sorted .eh_frame_hdr table. */
static const uint8_t *find_fde(uintptr_t pc)
{
	struct find f = { pc, NULL };
	const uint8_t *p, *end;
	const int32_t *tab;
	uintptr_t ehf, count;
	size_t lo, hi;

	dl_iterate_phdr(find_obj, &f);
	if (!f.hdr || f.hdr[0] != 1)
		return NULL;
	p = f.hdr + 4;
	end = p + 64;   /* bounds only the two header fields */
	if (rd_enc(&p, end, f.hdr[1], (uintptr_t)f.hdr, 1, &ehf) ||
	    rd_enc(&p, end, f.hdr[2], (uintptr_t)f.hdr, 1, &count))
		return NULL;
	if (f.hdr[3] != 0x3b || !count)        /* datarel | sdata4 */
		return NULL;
	tab = (const int32_t *)p;
	lo = 0;
	hi = count;
	/* last entry whose start <= pc */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uintptr_t)f.hdr + (intptr_t)tab[2 * mid] <= pc)
			lo = mid;
		else
			hi = mid;
	}
	if ((uintptr_t)f.hdr + (intptr_t)tab[2 * lo] > pc)
		return NULL;
	return f.hdr + (intptr_t)tab[2 * lo + 1];
}

/* ---- interpreting CFA instructions ---- */

struct cie {
	uint64_t code_align;
	int64_t data_align;
	uint64_t ra_reg;
	uint8_t fde_enc;
	int has_z;
	const uint8_t *ins, *ins_end;
};

/* Length of the entry at P; sets *body to after the length field. */
static const uint8_t *entry_end(const uint8_t *p, const uint8_t **body)
{
	uint32_t len32;
	uint64_t len;

	memcpy(&len32, p, 4);
	p += 4;
	len = len32;
	if (len32 == 0xffffffffu) {
		memcpy(&len, p, 8);
		p += 8;
	}
	*body = p;
	return len ? p + len : NULL;
}

static int parse_cie(const uint8_t *p0, struct cie *c)
{
	const uint8_t *p, *end = entry_end(p0, &p);
	const char *aug;
	uint32_t id;
	uint8_t version;

	if (!end)
		return -1;
	memcpy(&id, p, 4);
	p += 4;
	if (id != 0)
		return -1;
	version = *p++;
	if (version != 1 && version != 3)
		return -1;
	aug = (const char *)p;
	p += strnlen(aug, (size_t)(end - p)) + 1;
	if (p > end)
		return -1;
	c->code_align = rd_uleb(&p, end);
	c->data_align = rd_sleb(&p, end);
	c->ra_reg = version == 1 ? *p++ : rd_uleb(&p, end);
	c->fde_enc = 0;         /* absptr */
	c->has_z = 0;
	if (aug[0] == 'z') {
		uint64_t alen = rd_uleb(&p, end);
		const uint8_t *aend = p + alen;
		const char *a;

		if (aend > end)
			return -1;
		c->has_z = 1;
		for (a = aug + 1; *a; a++) {
			uintptr_t skip;

			switch (*a) {
			case 'R':
				c->fde_enc = *p++;
				break;
			case 'L':
				p++;
				break;
			case 'P': {
				uint8_t enc = *p++;

				if (rd_enc(&p, aend, enc, 0, 0, &skip))
					return -1;
				break;
			}
			default:
				return -1;      /* 'S' (signal frame), unknown */
			}
		}
		p = aend;
	} else if (aug[0]) {
		return -1;
	}
	if (c->ra_reg != REG_RA)
		return -1;
	c->ins = p;
	c->ins_end = end;
	return 0;
}

#define STATE_STACK 8

static void set_rule(struct reg_rules *r, uint64_t reg, int how, int64_t off)
{
	if (reg == REG_RBP) {
		r->rbp_how = how;
		r->rbp_off = off;
	} else if (reg == REG_RA) {
		r->ra_how = how;
		r->ra_off = off;
	} else if (reg == REG_RSP) {
		r->rsp_how = how;
	}
}

static void restore_rule(struct reg_rules *r, const struct reg_rules *init, uint64_t reg)
{
	if (reg == REG_RBP) {
		r->rbp_how = init->rbp_how;
		r->rbp_off = init->rbp_off;
	} else if (reg == REG_RA) {
		r->ra_how = init->ra_how;
		r->ra_off = init->ra_off;
	} else if (reg == REG_RSP) {
		r->rsp_how = init->rsp_how;
	}
}

/*
 * Runs the instructions in [p, end) up to the row holding PC (LOC: the
 * address of the first row); INIT: the CIE's rules, for DW_CFA_restore.
 * Returns -1 on what is not understood.
 */
static int run_cfa(const uint8_t *p, const uint8_t *end, const struct cie *c,
		   uintptr_t loc, uintptr_t pc, struct reg_rules *r,
		   const struct reg_rules *init)
{
	struct reg_rules stack[STATE_STACK];
	int sp = 0;

	while (p < end) {
		uint8_t op = *p++;
		uint64_t reg, x;
		int64_t off;

		switch (op & 0xc0) {
		case 0x40:      /* advance_loc */
			loc += (op & 0x3f) * c->code_align;
			if (loc > pc)
				return 0;
			continue;
		case 0x80:      /* offset */
			off = (int64_t)rd_uleb(&p, end) * c->data_align;
			set_rule(r, op & 0x3f, R_OFFSET, off);
			continue;
		case 0xc0:      /* restore */
			if (!init)
				return -1;
			restore_rule(r, init, op & 0x3f);
			continue;
		}
		switch (op) {
		case 0x00:      /* nop */
			break;
		case 0x01: {    /* set_loc */
			uintptr_t a;

			if (rd_enc(&p, end, c->fde_enc, 0, 0, &a))
				return -1;
			loc = a;
			if (loc > pc)
				return 0;
			break;
		}
		case 0x02:
		case 0x03:
		case 0x04: {    /* advance_loc1/2/4 */
			unsigned n = op == 0x02 ? 1 : op == 0x03 ? 2 : 4;
			uint32_t d = 0;

			if ((size_t)(end - p) < n)
				return -1;
			memcpy(&d, p, n);       /* little-endian */
			p += n;
			loc += d * c->code_align;
			if (loc > pc)
				return 0;
			break;
		}
		case 0x05:      /* offset_extended */
			reg = rd_uleb(&p, end);
			off = (int64_t)rd_uleb(&p, end) * c->data_align;
			set_rule(r, reg, R_OFFSET, off);
			break;
		case 0x06:      /* restore_extended */
			if (!init)
				return -1;
			restore_rule(r, init, rd_uleb(&p, end));
			break;
		case 0x07:      /* undefined */
			set_rule(r, rd_uleb(&p, end), R_UNDEF, 0);
			break;
		case 0x08:      /* same_value */
			set_rule(r, rd_uleb(&p, end), R_SAME, 0);
			break;
		case 0x09:      /* register */
			reg = rd_uleb(&p, end);
			rd_uleb(&p, end);
			set_rule(r, reg, R_OTHER, 0);
			break;
		case 0x0a:      /* remember_state */
			if (sp == STATE_STACK)
				return -1;
			stack[sp++] = *r;
			break;
		case 0x0b:      /* restore_state */
			if (!sp)
				return -1;
			*r = stack[--sp];
			break;
		case 0x0c:      /* def_cfa */
			r->cfa_reg = (int)rd_uleb(&p, end);
			r->cfa_off = (int64_t)rd_uleb(&p, end);
			break;
		case 0x0d:      /* def_cfa_register */
			r->cfa_reg = (int)rd_uleb(&p, end);
			break;
		case 0x0e:      /* def_cfa_offset */
			r->cfa_off = (int64_t)rd_uleb(&p, end);
			break;
		case 0x0f:      /* def_cfa_expression */
			x = rd_uleb(&p, end);
			p += x;
			r->cfa_reg = -1;
			break;
		case 0x10:      /* expression */
		case 0x16:      /* val_expression */
			reg = rd_uleb(&p, end);
			x = rd_uleb(&p, end);
			p += x;
			set_rule(r, reg, R_OTHER, 0);
			break;
		case 0x11:      /* offset_extended_sf */
			reg = rd_uleb(&p, end);
			off = rd_sleb(&p, end) * c->data_align;
			set_rule(r, reg, R_OFFSET, off);
			break;
		case 0x12:      /* def_cfa_sf */
			r->cfa_reg = (int)rd_uleb(&p, end);
			r->cfa_off = rd_sleb(&p, end) * c->data_align;
			break;
		case 0x13:      /* def_cfa_offset_sf */
			r->cfa_off = rd_sleb(&p, end) * c->data_align;
			break;
		case 0x14:      /* val_offset */
			reg = rd_uleb(&p, end);
			rd_uleb(&p, end);
			set_rule(r, reg, R_OTHER, 0);
			break;
		case 0x15:      /* val_offset_sf */
			reg = rd_uleb(&p, end);
			rd_sleb(&p, end);
			set_rule(r, reg, R_OTHER, 0);
			break;
		case 0x2e:      /* GNU_args_size */
			rd_uleb(&p, end);
			break;
		case 0x2f:      /* GNU_negative_offset_extended */
			reg = rd_uleb(&p, end);
			off = -(int64_t)rd_uleb(&p, end) * c->data_align;
			set_rule(r, reg, R_OFFSET, off);
			break;
		default:
			return -1;
		}
	}
	return p == end || p < end ? 0 : -1;
}

/* Fills E with the rule for return address IP; CFI_BAD when not
 * modelled (the return address not at CFA - 8 included). */
static __attribute__((noinline, cold)) void rule_fill(struct cfi_rule *e, uintptr_t ip)
{
	uintptr_t pc = ip - 1;  /* the call, not what follows it */
	const uint8_t *fde = find_fde(pc), *p, *end, *cie_p;
	struct reg_rules init, r;
	struct cie c;
	uintptr_t begin, range;
	uint32_t cie_off;

	memset(e, 0, sizeof(*e));
	e->ip = ip;
	e->flags = CFI_BAD;
	if (!fde || !(end = entry_end(fde, &p)))
		return;
	memcpy(&cie_off, p, 4);
	if (!cie_off)
		return;         /* a CIE, not an FDE */
	cie_p = p - cie_off;
	p += 4;
	if (parse_cie(cie_p, &c))
		return;
	if (rd_enc(&p, end, c.fde_enc, 0, 1, &begin) ||
	    rd_enc(&p, end, c.fde_enc & 0x0f, 0, 0, &range))
		return;
	if (pc < begin || pc - begin >= range)
		return;
	if (c.has_z)
		p += rd_uleb(&p, end);
	memset(&init, 0, sizeof(init));
	init.cfa_reg = -1;
	init.rbp_how = R_SAME;
	init.ra_how = R_UNDEF;
	init.rsp_how = R_SAME;
	if (run_cfa(c.ins, c.ins_end, &c, 0, UINTPTR_MAX, &init, NULL))
		return;
	r = init;
	if (run_cfa(p, end, &c, begin, pc, &r, &init))
		return;
	if ((r.cfa_reg != REG_RSP && r.cfa_reg != REG_RBP) || r.rsp_how != R_SAME ||
	    r.cfa_off < 8 - INT32_MAX || r.cfa_off > INT32_MAX - 8)
		return;
	if (r.ra_how == R_UNDEF)
		e->flags = CFI_END;
	else if (r.ra_how == R_OFFSET && r.ra_off == -8)
		e->flags = 0;
	else
		return;
	if (r.rbp_how == R_OFFSET) {
		/* below the CFA, above the return address' slot */
		if (r.rbp_off > -16 || r.rbp_off < INT16_MIN || (r.rbp_off & 7)) {
			e->flags = CFI_BAD;
			return;
		}
		e->flags |= CFI_RBP_SAVED;
		e->rbp_off = (int16_t)r.rbp_off;
	} else if (r.rbp_how != R_SAME) {
		e->flags |= CFI_RBP_LOST;
	}
	e->cfa_rbp = r.cfa_reg == REG_RBP;
	e->cfa_off = (int32_t)r.cfa_off;
}

/* Bumped by dlclose: code at an address may then be another's. */
static uint32_t generation = 1;

void cfi_modules_changed(void)
{
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
}

/* Notes a stack word the walk read (past the room: the walk is not
 * remembered). */
static inline void walk_read(struct tcache *c, uintptr_t at, uintptr_t val)
{
	uint32_t i = c->w_nreads++;

	if (i < 2 * WALK_FRAMES) {
		c->w_read[i].at = at;
		c->w_read[i].val = val;
	}
}

/*
 * The return addresses of the program's stack, innermost first, at most
 * MAX, skipping this library's frames (as stack_capture does with
 * libunwind's). FRAME is the hook's frame: its saved rbp, then the return
 * address into its caller. Returns -1 where libunwind must do it.
 */
int cfi_backtrace(struct tstate *t, struct tcache *c, void **frame,
		  uint64_t *ips, int max, uintptr_t self_lo, uintptr_t self_hi)
{
	uintptr_t sp = (uintptr_t)frame, hi = t->stack_hi;
	uintptr_t bp, ip, self_len = self_hi - self_lo;
	uint32_t gen = __atomic_load_n(&generation, __ATOMIC_RELAXED);
	int n = 0;

	if (unlikely(c->cfi_gen != gen)) {
		memset(c->cfi, 0, sizeof(c->cfi));
		c->cfi_gen = gen;
	}

	c->w_hit = 0;
	if (sp < t->stack_lo || sp + 16 > hi || (sp & 7))
		return -1;
	bp = ((uintptr_t *)frame)[0];
	ip = ((uintptr_t *)frame)[1];
	sp += 16;
	/*
	 * The walk is a function of where it starts and of the stack words it
	 * reads (the rules depend on return addresses only): a hook called
	 * from the same place as last time, under the same callers, reads the
	 * same words. Most calls are, so the last walk is remembered and
	 * checked word by word before it is walked again.
	 */
	if (c->w_valid && c->w_gen == gen && c->w_ip == ip && c->w_sp == sp && c->w_bp == bp) {
		uint32_t i;

		for (i = 0; i < c->w_nreads; i++)
			if (*(const uintptr_t *)c->w_read[i].at != c->w_read[i].val)
				break;
		if (i == c->w_nreads && c->w_n <= max) {
			memcpy(ips, c->w_ips, (size_t)c->w_n * sizeof(*ips));
			c->w_hit = 1;
			return c->w_n;
		}
	}
	c->w_valid = 0;
	c->w_ip = ip;
	c->w_sp = sp;
	c->w_bp = bp;
	c->w_nreads = 0;
	while (ip) {
		struct cfi_rule *e = &c->cfi[((ip * 0x9E3779B97F4A7C15ull) >> 40) & (CFI_CACHE - 1)];
		uintptr_t cfa;

		if (ip - self_lo >= self_len) {
			if (n == max)
				break;
			ips[n++] = ip;
		}
		if (unlikely(e->ip != ip))
			rule_fill(e, ip);
		/* an outermost frame, one not modelled, or one after
		 * which rbp is not known (rare: libunwind does it) */
		if (unlikely(e->flags & (CFI_BAD | CFI_END | CFI_RBP_LOST))) {
			if (!(e->flags & CFI_END))
				return -1;
			break;
		}
		cfa = (e->cfa_rbp ? bp : sp) + e->cfa_off;
		/* the caller's frame: above this one, inside the stack; the
		 * return address at cfa - 8, a saved rbp below it */
		if (unlikely(cfa < sp + 8) || unlikely(cfa > hi) || unlikely(cfa & 7))
			return -1;
		if (e->flags & CFI_RBP_SAVED) {
			if (unlikely(cfa + e->rbp_off < sp))
				return -1;
			bp = *(uintptr_t *)(cfa + e->rbp_off);
			walk_read(c, cfa + e->rbp_off, bp);
		}
		ip = ((uintptr_t *)cfa)[-1];
		walk_read(c, cfa - 8, ip);
		sp = cfa;
	}
	if (c->w_nreads <= 2 * WALK_FRAMES) {
		c->w_n = n;
		memcpy(c->w_ips, ips, (size_t)n * sizeof(*ips));
		c->w_gen = gen;
		c->w_valid = 1;
	}
	return n;
}
