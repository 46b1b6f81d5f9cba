/* The HTML scan of htmlscan.py, compiled: the same tokens, the same spans, in one pass.
 *
 * Each branch below mirrors one alternative of the reference regular expressions in
 * htmlscan.py, tried in the same order, with the same end bound (a conditional
 * comment's inside is scanned as if the document ended where it ends). The tests
 * compare both scanners on the corpus, on hostile HTML and on generated input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define KIND_LINK 0
#define KIND_IMAGE 1

typedef unsigned char uchar;

/* [\t\n\f\r ] */
static inline int is_ws(uchar c) {
    return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

/* [\t\n\f\r />]: what ends a tag or attribute name (and what the SEP lookahead wants) */
static inline int is_sep(uchar c) { return is_ws(c) || c == '/' || c == '>'; }

/* Python's \s in a bytes pattern */
static inline int is_pyspace(uchar c) { return is_ws(c) || c == '\v'; }

static inline int is_alpha(uchar c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

static inline uchar lower(uchar c) { return (c >= 'A' && c <= 'Z') ? (uchar)(c + 32) : c; }

/* data[p:p+n] equals the lowercase ASCII `word`, ignoring case, within the bound */
static int iequal(const uchar *d, Py_ssize_t p, Py_ssize_t end, const char *word, Py_ssize_t n) {
    if (end - p < n) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (lower(d[p + i]) != (uchar)word[i]) {
            return 0;
        }
    }
    return 1;
}

/* `word` followed by a separator (the SEP lookahead, which fails at the bound) */
static int iword(const uchar *d, Py_ssize_t p, Py_ssize_t end, const char *word) {
    Py_ssize_t n = (Py_ssize_t)strlen(word);
    return iequal(d, p, end, word, n) && p + n < end && is_sep(d[p + n]);
}

static Py_ssize_t find_byte(const uchar *d, Py_ssize_t p, Py_ssize_t end, uchar c) {
    const uchar *hit = p < end ? memchr(d + p, c, (size_t)(end - p)) : NULL;
    return hit ? hit - d : -1;
}

/* One attribute of interest: its name's end, and its value's span (start -1: no value). */
typedef struct {
    int seen;
    Py_ssize_t name_end, start, stop;
} Attr;

typedef struct {
    Attr href, track, src;
} Attrs;

static void note(Attr *a, Py_ssize_t name_end, Py_ssize_t start, Py_ssize_t stop) {
    if (!a->seen) { /* the first of two same-named attributes wins */
        a->seen = 1;
        a->name_end = name_end;
        a->start = start;
        a->stop = stop;
    }
}

static void note_attribute(const uchar *d, Py_ssize_t name, Py_ssize_t name_end, Py_ssize_t start,
                           Py_ssize_t stop, Attrs *attrs) {
    Py_ssize_t n = name_end - name;
    if (n == 4 && iequal(d, name, name_end, "href", 4)) {
        note(&attrs->href, name_end, start, stop);
    } else if (n == 10 && iequal(d, name, name_end, "data-track", 10)) {
        note(&attrs->track, name_end, start, stop);
    } else if (n == 3 && iequal(d, name, name_end, "src", 3)) {
        note(&attrs->src, name_end, start, stop);
    }
}

/* What one run learned about where tags can not end: unterminated tags are retried
 * one position further on, and without this a run of them (`<a <a <a ...` with no
 * '>') would be read again and again, quadratic in the input. Only this scan's speed
 * depends on it, never its result. */
typedef struct {
    Py_ssize_t base, size;
    unsigned char *dead;           /* a bit per position: _TAG_REST from here fails */
    Py_ssize_t name_from, name_to; /* the last tag name read: [from, to) */
} Memo;

static int is_dead(const Memo *m, Py_ssize_t p) {
    Py_ssize_t i = p - m->base;
    return m->dead != NULL && (m->dead[i >> 3] >> (i & 7)) & 1;
}

/* One pass of _TAG_REST from p; with `mark`, every attribute start is noted as dead. */
static Py_ssize_t tag_walk(const uchar *d, Py_ssize_t p, Py_ssize_t end, Attrs *attrs, Memo *m,
                           int mark) {
    for (;;) {
        if (is_dead(m, p)) {
            return -1;
        }
        if (mark) {
            Py_ssize_t i = p - m->base;
            m->dead[i >> 3] |= (unsigned char)(1u << (i & 7));
        }
        Py_ssize_t q = p;
        while (q < end && (is_ws(d[q]) || d[q] == '/')) {
            q++;
        }
        if (q >= end) {
            return -1;
        }
        if (d[q] == '>') {
            return q + 1;
        }
        /* an attribute: [^WS/>][^WS/=>]* */
        Py_ssize_t name = q++;
        while (q < end && !is_sep(d[q]) && d[q] != '=') {
            q++;
        }
        Py_ssize_t name_end = q;
        Py_ssize_t start = -1, stop = -1;
        Py_ssize_t v = q;
        while (v < end && is_ws(d[v])) {
            v++;
        }
        if (v < end && d[v] == '=') {
            v++;
            while (v < end && is_ws(d[v])) {
                v++;
            }
            Py_ssize_t close = -1;
            if (v < end && (d[v] == '"' || d[v] == '\'')) {
                close = find_byte(d, v + 1, end, d[v]);
            }
            if (close >= 0) {
                start = v + 1;
                stop = close;
                q = close + 1;
            } else { /* unquoted, or a quote never closed: up to whitespace or '>' */
                start = v;
                while (v < end && !is_ws(d[v]) && d[v] != '>') {
                    v++;
                }
                stop = v;
                q = v;
            }
        }
        if (attrs) {
            note_attribute(d, name, name_end, start, stop, attrs);
        }
        p = q;
    }
}

/* _TAG_REST: attributes, then [WS/]*>. The position after '>', or -1 (no tag here).
 * With `attrs`, the attributes of interest are noted on the way. */
static Py_ssize_t tag_rest(const uchar *d, Py_ssize_t p, Py_ssize_t end, Attrs *attrs, Memo *m) {
    Py_ssize_t r = tag_walk(d, p, end, attrs, m, 0);
    if (r < 0) {
        if (m->dead == NULL) { /* without memory, only slower */
            m->dead = PyMem_Calloc((size_t)(m->size >> 3) + 1, 1);
        }
        if (m->dead != NULL) {
            tag_walk(d, p, end, NULL, m, 1);
        }
    }
    return r;
}

/* _COMMENT_BODY from p (just after "<!--"): the position after the comment. */
static Py_ssize_t comment_end(const uchar *d, Py_ssize_t p, Py_ssize_t end) {
    if (p < end && d[p] == '>') {
        return p + 1;
    }
    if (p + 1 < end && d[p] == '-' && d[p + 1] == '>') {
        return p + 2;
    }
    for (Py_ssize_t q = find_byte(d, p, end, '-'); q >= 0; q = find_byte(d, q + 1, end, '-')) {
        if (q + 2 < end && d[q + 1] == '-') {
            if (d[q + 2] == '>') {
                return q + 3;
            }
            if (d[q + 2] == '!' && q + 3 < end && d[q + 3] == '>') {
                return q + 4;
            }
        }
    }
    return end;
}

/* [^>]*(?:>|\Z) from p */
static Py_ssize_t to_gt(const uchar *d, Py_ssize_t p, Py_ssize_t end) {
    Py_ssize_t gt = find_byte(d, p, end, '>');
    return gt >= 0 ? gt + 1 : end;
}

/* The raw-text element (no markup inside) a start tag name of n bytes names, or NULL. */
static const char *raw_text_name(const uchar *d, Py_ssize_t p, Py_ssize_t n) {
    static const char *const names[] = {"script",  "style", "textarea", "title",
                                        "xmp",     "iframe", "noembed", "noframes"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((Py_ssize_t)strlen(names[i]) == n && iequal(d, p, p + n, names[i], n)) {
            return names[i];
        }
    }
    return NULL;
}

/* A raw-text element's content from p (after its start tag's name) : the position of its
 * end tag (or the bound), or -1 if the start tag does not end. */
static Py_ssize_t raw_text(const uchar *d, Py_ssize_t p, Py_ssize_t end, const char *name,
                           Memo *m) {
    Py_ssize_t q = tag_rest(d, p, end, NULL, m);
    if (q < 0) {
        return -1;
    }
    for (q = find_byte(d, q, end, '<'); q >= 0; q = find_byte(d, q + 1, end, '<')) {
        if (q + 1 < end && d[q + 1] == '/' && iword(d, q + 2, end, name)) {
            return q;
        }
    }
    return end;
}

/* The name of a tag at p (after '<'): its end. */
static Py_ssize_t name_end(const uchar *d, Py_ssize_t p, Py_ssize_t end, Memo *m) {
    if (m->name_from <= p && p < m->name_to) { /* inside the last name read: same end */
        return m->name_to;
    }
    m->name_from = p;
    while (p < end && !is_sep(d[p])) {
        p++;
    }
    m->name_to = p;
    return p;
}

/* A start tag name the scan acts on: a, area, v:..., and img when asked. */
static int is_interesting(const uchar *d, Py_ssize_t p, Py_ssize_t stop, Py_ssize_t end,
                          int with_img) {
    Py_ssize_t n = stop - p;
    if (stop >= end) { /* the SEP lookahead finds nothing at the bound */
        return 0;
    }
    return (n == 1 && lower(d[p]) == 'a') || (n == 4 && iequal(d, p, stop, "area", 4)) ||
           (n >= 2 && lower(d[p]) == 'v' && d[p + 1] == ':') ||
           (with_img && n == 3 && iequal(d, p, stop, "img", 3));
}

typedef struct {
    const uchar *d;
    int with_img;
    PyObject *found;
    Py_ssize_t body_end;
} Scan;

static int append(Scan *s, int kind, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c, Py_ssize_t e) {
    PyObject *item = Py_BuildValue("(innnn)", kind, a, b, c, e);
    if (item == NULL) {
        return -1;
    }
    int rc = PyList_Append(s->found, item);
    Py_DECREF(item);
    return rc;
}

/* An interesting start tag's attributes: report what the Python side needs. */
static int report_tag(Scan *s, int image, const Attrs *attrs) {
    if (image) {
        if (attrs->src.seen && attrs->src.start >= 0) {
            return append(s, KIND_IMAGE, attrs->src.start, attrs->src.stop, -1, -1);
        }
        return 0;
    }
    if (!attrs->href.seen || attrs->href.start < 0) {
        return 0;
    }
    Py_ssize_t ts = -1, te = -1;
    if (attrs->track.seen) {
        ts = attrs->track.start >= 0 ? attrs->track.start : attrs->track.name_end;
        te = attrs->track.start >= 0 ? attrs->track.stop : attrs->track.name_end;
    }
    return append(s, KIND_LINK, attrs->href.start, attrs->href.stop, ts, te);
}

/* <!--[if ...]>(inside)<![endif]\s*--> over [p, stop): the inside's span, or 0. */
static int conditional(const uchar *d, Py_ssize_t p, Py_ssize_t stop, Py_ssize_t *in_start,
                       Py_ssize_t *in_stop) {
    if (!iequal(d, p, stop, "<!--[if", 7)) {
        return 0;
    }
    Py_ssize_t bracket = find_byte(d, p + 7, stop, ']');
    if (bracket < 0 || bracket + 1 >= stop || d[bracket + 1] != '>') {
        return 0;
    }
    if (stop - p < 3 || memcmp(d + stop - 3, "-->", 3) != 0) {
        return 0;
    }
    Py_ssize_t t = stop - 3;
    while (t > p && is_pyspace(d[t - 1])) {
        t--;
    }
    Py_ssize_t endif = t - 9;
    if (endif < bracket + 2 || !iequal(d, endif, t, "<![endif]", 9)) {
        return 0;
    }
    *in_start = bracket + 2;
    *in_stop = endif;
    return 1;
}

static int scan_range(Scan *s, Py_ssize_t pos, Py_ssize_t end, int top_level, Memo *m);

static int run(Scan *s, Py_ssize_t pos, Py_ssize_t end, int top_level) {
    Memo m = {pos, end - pos + 1, NULL, 0, 0};
    int rc = scan_range(s, pos, end, top_level, &m);
    PyMem_Free(m.dead);
    return rc;
}

static int scan_range(Scan *s, Py_ssize_t pos, Py_ssize_t end, int top_level, Memo *m) {
    const uchar *d = s->d;
    while (pos < end) {
        if (d[pos] != '<') { /* [^<]++ */
            pos = find_byte(d, pos, end, '<');
            if (pos < 0) {
                return 0;
            }
            continue;
        }
        uchar c = pos + 1 < end ? d[pos + 1] : 0;
        int at_bound = pos + 1 >= end;
        if (at_bound || !(is_alpha(c) || c == '!' || c == '/' || c == '?')) {
            pos++; /* a '<' that starts nothing is text */
            continue;
        }
        if (c == '!') {
            if (pos + 3 < end && d[pos + 2] == '-' && d[pos + 3] == '-') {
                Py_ssize_t stop = comment_end(d, pos + 4, end);
                Py_ssize_t in_start, in_stop;
                if (iequal(d, pos + 4, end, "[if", 3) &&
                    conditional(d, pos, stop, &in_start, &in_stop)) {
                    /* Inside, no comment can be conditional (it would end the outer one). */
                    if (run(s, in_start, in_stop, 0) < 0) {
                        return -1;
                    }
                }
                pos = stop;
            } else { /* doctype, CDATA outside foreign content, bogus comment */
                pos = to_gt(d, pos + 2, end);
            }
            continue;
        }
        if (c == '?') {
            pos = to_gt(d, pos + 2, end);
            continue;
        }
        if (c == '/') {
            if (pos + 2 >= end || !is_alpha(d[pos + 2])) { /* bogus comment (or '</>') */
                pos = to_gt(d, pos + 2, end);
                continue;
            }
            int body = iword(d, pos + 2, end, "body");
            Py_ssize_t after = body ? pos + 6 : name_end(d, pos + 2, end, m);
            Py_ssize_t q = tag_rest(d, after, end, NULL, m);
            if (q < 0) {
                pos++; /* an unterminated tag: the tokenizer drops it, so nothing to do */
                continue;
            }
            if (body && top_level) {
                s->body_end = pos;
            }
            pos = q;
            continue;
        }
        /* '<' + a letter: a start tag */
        Py_ssize_t stop = name_end(d, pos + 1, end, m);
        Py_ssize_t n = stop - (pos + 1), q;
        const char *raw = n >= 3 && n <= 8 && stop < end ? raw_text_name(d, pos + 1, n) : NULL;
        if (raw != NULL) {
            q = raw_text(d, stop, end, raw, m);
            pos = q >= 0 ? q : pos + 1;
            continue;
        }
        if (n == 9 && stop < end && iequal(d, pos + 1, stop, "plaintext", 9)) {
            return 0; /* the rest is text, for good */
        }
        if (is_interesting(d, pos + 1, stop, end, s->with_img)) {
            Attrs attrs;
            memset(&attrs, 0, sizeof attrs);
            q = tag_rest(d, stop, end, &attrs, m);
            if (q < 0) {
                pos++;
                continue;
            }
            int image = stop - (pos + 1) == 3 && iequal(d, pos + 1, stop, "img", 3);
            if (report_tag(s, image, &attrs) < 0) {
                return -1;
            }
            pos = q;
            continue;
        }
        q = tag_rest(d, stop, end, NULL, m);
        pos = q >= 0 ? q : pos + 1;
    }
    return 0;
}

static PyObject *scan(PyObject *module, PyObject *args) {
    Py_buffer view;
    int with_img;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*p:scan", &view, &with_img)) {
        return NULL;
    }
    Scan s = {view.buf, with_img, PyList_New(0), -1};
    PyObject *result = NULL;
    if (s.found != NULL) {
        if (run(&s, 0, view.len, 1) == 0) {
            result = Py_BuildValue("(On)", s.found, s.body_end);
        }
        Py_DECREF(s.found);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(data, with_img) -> (found, body_end): the scan of htmlscan.scan_python, compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_htmlscan",
    .m_doc = "The HTML scan of htmlscan.py, compiled.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__htmlscan(void) { return PyModule_Create(&module); }
