/*
 * surface.c - the output file: an SVG, PNG or PDF cairo surface picked by
 * the file's extension, with the page's title and a one-line description of
 * its figures stored as document metadata (SVG <title>/<desc>, PDF info
 * dictionary, PNG tEXt chunks). Cairo draws text as glyph outlines, so the
 * metadata is how a reader, a search engine or a test finds "peak_bytes=".
 */
#include "chart.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>

#ifdef __SANITIZE_ADDRESS__
/* Fontconfig, under cairo's text, keeps its configuration for the life of
 * the process and never frees it; LeakSanitizer would fail every SANITIZE
 * build of ms-svg and its tests on that alone. Only that library is
 * excused. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\n";
}

/* ... quietly: tests compare standard error. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}
#endif

int out_format_for(const char *path)
{
	const char *dot, *slash;
	if (!path || strcmp(path, "-") == 0)
		return OUT_SVG;
	dot = strrchr(path, '.');
	slash = strrchr(path, '/');
	/* No extension at all (/dev/stdout, a fifo): SVG, the default. */
	if (!dot || (slash && dot < slash))
		return OUT_SVG;
	if (strcasecmp(dot, ".svg") == 0)
		return OUT_SVG;
	if (strcasecmp(dot, ".png") == 0)
		return OUT_PNG;
	if (strcasecmp(dot, ".pdf") == 0)
		return OUT_PDF;
	return -1;
}

/* A growing memory buffer: SVG and PNG are assembled in memory so the
 * metadata can be spliced in before anything is written. Their size is
 * bounded by the page (pixel columns), not by the trace. */
struct membuf {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static cairo_status_t mem_write(void *ctx, const unsigned char *data, unsigned int len)
{
	struct membuf *m = ctx;
	if (m->len + len > m->cap) {
		size_t ncap = m->cap ? m->cap : 65536;
		unsigned char *np;
		while (ncap < m->len + len)
			ncap *= 2;
		np = realloc(m->p, ncap);
		if (!np) {
			m->oom = 1;
			return CAIRO_STATUS_NO_MEMORY;
		}
		m->p = np;
		m->cap = ncap;
	}
	memcpy(m->p + m->len, data, len);
	m->len += len;
	return CAIRO_STATUS_SUCCESS;
}

static cairo_status_t file_write(void *ctx, const unsigned char *data, unsigned int len)
{
	return fwrite(data, 1, len, ctx) == len ? CAIRO_STATUS_SUCCESS :
		CAIRO_STATUS_WRITE_ERROR;
}

static int put(FILE *f, const void *p, size_t len)
{
	return len == 0 || fwrite(p, 1, len, f) == len ? 0 : -1;
}

/* XML text content: &, < and > escaped; control bytes dropped. */
static int put_xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		const char *e = NULL;
		if (*s == '&')
			e = "&amp;";
		else if (*s == '<')
			e = "&lt;";
		else if (*s == '>')
			e = "&gt;";
		else if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
			continue;
		if (e ? put(f, e, strlen(e)) : put(f, s, 1))
			return -1;
	}
	return 0;
}

/* Writes the SVG with <title> and <desc> as the first children of <svg>. */
static int write_svg(FILE *f, const struct membuf *m, const char *title, const char *desc)
{
	const unsigned char *tag = NULL, *end;
	size_t i, at;
	for (i = 0; i + 4 < m->len; i++) {
		if (memcmp(m->p + i, "<svg", 4) == 0) {
			tag = m->p + i;
			break;
		}
	}
	end = tag ? memchr(tag, '>', m->len - (size_t)(tag - m->p)) : NULL;
	if (!end)
		return put(f, m->p, m->len);
	at = (size_t)(end - m->p) + 1;
	if (put(f, m->p, at) || put(f, "\n<title>", 8) || put_xml_text(f, title ? title : "") ||
	    put(f, "</title>\n<desc>", 15) || put_xml_text(f, desc ? desc : "") ||
	    put(f, "</desc>", 7) || put(f, m->p + at, m->len - at))
		return -1;
	return 0;
}

/* CRC-32 (ISO-HDLC, PNG's), bit by bit: a few hundred bytes of text. */
static uint32_t png_crc(uint32_t crc, const unsigned char *p, size_t len)
{
	int k;
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static int put_be32(FILE *f, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };
	return put(f, b, 4);
}

/* A tEXt chunk: Latin-1 keyword, NUL, text. */
static int put_png_text(FILE *f, const char *key, const char *text)
{
	size_t kl = strlen(key), tl = strlen(text);
	unsigned char *buf = malloc(4 + kl + 1 + tl);
	int rc;
	if (!buf)
		return -1;
	memcpy(buf, "tEXt", 4);
	memcpy(buf + 4, key, kl + 1);
	memcpy(buf + 5 + kl, text, tl);
	rc = put_be32(f, (uint32_t)(kl + 1 + tl)) || put(f, buf, 4 + kl + 1 + tl) ||
		put_be32(f, png_crc(0, buf, 4 + kl + 1 + tl));
	free(buf);
	return rc ? -1 : 0;
}

/* Writes the PNG with tEXt chunks right after IHDR (signature 8 bytes,
 * IHDR 4 + 4 + 13 + 4). */
static int write_png(FILE *f, const struct membuf *m, const char *title, const char *desc)
{
	const size_t ihdr_end = 8 + 25;
	if (m->len < ihdr_end || memcmp(m->p + 12, "IHDR", 4) != 0)
		return put(f, m->p, m->len);
	if (put(f, m->p, ihdr_end) ||
	    (title && *title && put_png_text(f, "Title", title)) ||
	    (desc && *desc && put_png_text(f, "Description", desc)) ||
	    put(f, m->p + ihdr_end, m->len - ihdr_end))
		return -1;
	return 0;
}

int render_page(FILE *f, enum out_format format, double w, double h,
		const struct page *pg, enum chart_kind chart, int by_thread,
		const char *title, const char *desc, char *err, size_t errlen)
{
	struct membuf m = { NULL, 0, 0, 0 };
	cairo_surface_t *s = NULL;
	cairo_status_t st;
	cairo_t *cr;
	int rc = -1;

	errno = 0;
	switch (format) {
	case OUT_SVG:
		s = cairo_svg_surface_create_for_stream(mem_write, &m, w, h);
		/* Pixels, so a browser shows it at the size asked for. */
		cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
		break;
	case OUT_PDF:
		s = cairo_pdf_surface_create_for_stream(file_write, f, w, h);
		cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title ? title : "");
		cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_SUBJECT, desc ? desc : "");
		cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "memscope ms-svg");
		break;
	case OUT_PNG:
		s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)w, (int)h);
		break;
	}
	st = cairo_surface_status(s);
	if (st != CAIRO_STATUS_SUCCESS) {
		snprintf(err, errlen, "cannot create the drawing surface: %s",
			 cairo_status_to_string(st));
		goto out;
	}
	cr = cairo_create(s);
	draw_page(cr, w, h, pg, chart, by_thread);
	st = cairo_status(cr);
	cairo_destroy(cr);
	if (st != CAIRO_STATUS_SUCCESS) {
		snprintf(err, errlen, "drawing failed: %s", cairo_status_to_string(st));
		goto out;
	}
	if (format == OUT_PNG)
		st = cairo_surface_write_to_png_stream(s, mem_write, &m);
	cairo_surface_finish(s);
	if (st == CAIRO_STATUS_SUCCESS)
		st = cairo_surface_status(s);
	if (st != CAIRO_STATUS_SUCCESS) {
		snprintf(err, errlen, "%s", st == CAIRO_STATUS_WRITE_ERROR ?
			 strerror(errno ? errno : EIO) : cairo_status_to_string(st));
		goto out;
	}
	if (format == OUT_SVG && write_svg(f, &m, title, desc) < 0) {
		snprintf(err, errlen, "%s", strerror(errno ? errno : EIO));
		goto out;
	}
	if (format == OUT_PNG && write_png(f, &m, title, desc) < 0) {
		snprintf(err, errlen, "%s", strerror(errno ? errno : EIO));
		goto out;
	}
	rc = 0;
out:
	if (s)
		cairo_surface_destroy(s);
	free(m.p);
	return rc;
}
