/* The tracking routes' hot path in C: verify a tracking token and write its hit's spool line.
 *
 * `Verifier.line(token, is_open, ip, user_agent, method, account)` returns `(line, destination)`
 * for a valid token of the kind asked for that the host answers, and None for anything else:
 * the caller then takes the Python path (tokens.py, hits.py), which is the reference, says why
 * a token is refused, and answers. `account` is b"" on a host that answers every account's
 * tokens (the instance's own), else the tag of the account whose tracking domain the host is:
 * a version 2 token bound to another account is not answered there, version 1 tokens are. So this file only ever has to agree with the reference on tokens it accepts; the
 * tests check that it accepts exactly what the reference accepts, with the same claims, and
 * that its lines are the reference's `spool_line` byte for byte.
 *
 * The token layout below is the one of tokens.py, which hands its own constants in (`layout`):
 * a Verifier is refused if they differ, and the caller then takes the reference alone. Event
 * ids come from the reference's generator too (`event_id`, hits.new_event_id).
 *
 * HMAC-SHA256 (RFC 2104) over OpenSSL's SHA-256, each key's inner and outer states hashed
 * once; the MAC is compared in constant time (CRYPTO_memcmp). A click's destination is read by
 * the reference's own (cached) function, handed in as `destination`.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: the cheapest way to copy a state */
#include <Python.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <time.h>

#define VERSION 1
#define VERSION_BOUND 2 /* [account tag] after the message id */
#define ACCOUNT_TAG_BYTES 8
#define KIND_OPEN 1
#define KIND_CLICK 2
#define KEY_ID_BYTES 2
#define MESSAGE_ID_BYTES 12
#define MAC_BYTES 16
#define HEADER (1 + KEY_ID_BYTES + MESSAGE_ID_BYTES)
#define MESSAGE_ID_CHAR0 ((1 + KEY_ID_BYTES) * 4 / 3)
#define MESSAGE_ID_CHARS (MESSAGE_ID_BYTES * 4 / 3)
#define FLAG_DEFLATED 0x01
#define FLAG_HONEYPOT 0x02
#define KNOWN_FLAGS (FLAG_DEFLATED | FLAG_HONEYPOT)
#define MAX_DECODED 8192

typedef struct {
    unsigned char id[KEY_ID_BYTES];
    SHA256_CTX inner, outer;
} Key;

typedef struct {
    PyObject_HEAD
    Key *keys;
    Py_ssize_t nkeys;
    PyObject *destination; /* (raw: bytes, deflated: bool) -> str, "" for none */
    PyObject *event_id;    /* () -> str */
    Py_ssize_t max_token_chars;
} Verifier;

/* ---------------------------------------------------------------- base64url, strict */

static signed char b64[256];

static void init_b64(void) {
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    memset(b64, -1, sizeof b64);
    for (int i = 0; i < 64; i++) b64[(unsigned char)alphabet[i]] = (signed char)i;
}

/* Decoded length, or -1: characters outside the alphabet, an impossible length, or unused
 * bits set in the last character (not the canonical encoding). */
static Py_ssize_t b64url_decode(const unsigned char *in, Py_ssize_t n, unsigned char *out) {
    if (n % 4 == 1) return -1;
    Py_ssize_t o = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        int a = b64[in[i]], b = b64[in[i + 1]], c = b64[in[i + 2]], d = b64[in[i + 3]];
        if ((a | b | c | d) < 0) return -1;
        unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    Py_ssize_t rest = n - i;
    if (rest == 2) {
        int a = b64[in[i]], b = b64[in[i + 1]];
        if ((a | b) < 0 || (b & 0x0F)) return -1;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
    } else if (rest == 3) {
        int a = b64[in[i]], b = b64[in[i + 1]], c = b64[in[i + 2]];
        if ((a | b | c) < 0 || (c & 0x03)) return -1;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
        out[o++] = (unsigned char)((b & 0x0F) << 4 | c >> 2);
    }
    return o;
}

/* ---------------------------------------------------------------- HMAC-SHA256 */

static void hmac_key(Key *key, const unsigned char *secret, size_t len) {
    unsigned char block[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
    if (len > SHA256_CBLOCK) {
        SHA256(secret, len, block);
    } else {
        memcpy(block, secret, len);
    }
    for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&key->inner);
    SHA256_Update(&key->inner, pad, sizeof pad);
    for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&key->outer);
    SHA256_Update(&key->outer, pad, sizeof pad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
}

static void hmac(const Key *key, const unsigned char *data, size_t len,
                 unsigned char out[SHA256_DIGEST_LENGTH]) {
    SHA256_CTX ctx = key->inner;
    SHA256_Update(&ctx, data, len);
    SHA256_Final(out, &ctx);
    ctx = key->outer;
    SHA256_Update(&ctx, out, SHA256_DIGEST_LENGTH);
    SHA256_Final(out, &ctx);
    OPENSSL_cleanse(&ctx, sizeof ctx);
}

/* ---------------------------------------------------------------- the line */

/* A JSON string, as json.encoder.encode_basestring writes it (ensure_ascii=False). */
static char *put_json(char *p, const char *s, Py_ssize_t n) {
    static const char digits[] = "0123456789abcdef";
    *p++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
            case '"': *p++ = '"'; break;
            case '\\': *p++ = '\\'; break;
            case '\b': *p++ = 'b'; break;
            case '\f': *p++ = 'f'; break;
            case '\n': *p++ = 'n'; break;
            case '\r': *p++ = 'r'; break;
            case '\t': *p++ = 't'; break;
            default:
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = digits[c >> 4];
                *p++ = digits[c & 0x0F];
        }
    }
    *p++ = '"';
    return p;
}

static char *put(char *p, const char *s) {
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_int(char *p, unsigned long long v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = digits[--n];
    return p;
}

/* ---------------------------------------------------------------- Verifier */

/* tokens.py's constants, in the order of its TOKEN_LAYOUT. */
static const long layout[] = {VERSION,          KIND_OPEN,     KIND_CLICK,    KEY_ID_BYTES,
                              MESSAGE_ID_BYTES, MAC_BYTES,     FLAG_DEFLATED, FLAG_HONEYPOT,
                              VERSION_BOUND,    ACCOUNT_TAG_BYTES};
#define LAYOUT_SIZE ((Py_ssize_t)(sizeof layout / sizeof layout[0]))

static int same_layout(PyObject *given) {
    PyObject *seq = PySequence_Fast(given, "layout must be a sequence of int");
    if (seq == NULL) return -1;
    int same = PySequence_Fast_GET_SIZE(seq) == LAYOUT_SIZE;
    for (Py_ssize_t i = 0; same && i < LAYOUT_SIZE; i++) {
        long value = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        same = value == layout[i];
    }
    Py_DECREF(seq);
    if (!same) {
        PyErr_SetString(PyExc_ValueError,
                        "built for another token layout than the one given: rebuild it");
        return -1;
    }
    return 0;
}

static int Verifier_init(Verifier *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"keys", "layout", "destination", "event_id", "max_token_chars",
                            NULL};
    PyObject *keys, *given_layout, *destination, *event_id;
    Py_ssize_t max_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOn", names, &keys, &given_layout,
                                     &destination, &event_id, &max_chars))
        return -1;
    if (!PyCallable_Check(destination) || !PyCallable_Check(event_id)) {
        PyErr_SetString(PyExc_TypeError, "destination and event_id must be callable");
        return -1;
    }
    if (same_layout(given_layout) < 0) return -1;
    PyObject *seq = PySequence_Fast(keys, "keys must be a sequence of (key id, subkey)");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Key *table = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Key));
    if (table == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *id, *secret;
        Py_ssize_t id_len, secret_len;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "y#y#", &id, &id_len, &secret,
                              &secret_len)) {
            PyMem_Free(table);
            Py_DECREF(seq);
            return -1;
        }
        if (id_len != KEY_ID_BYTES) {
            PyMem_Free(table);
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "a key id is 2 bytes");
            return -1;
        }
        memcpy(table[i].id, id, KEY_ID_BYTES);
        hmac_key(&table[i], (const unsigned char *)secret, (size_t)secret_len);
    }
    Py_DECREF(seq);
    if (self->keys) {
        OPENSSL_cleanse(self->keys, (size_t)self->nkeys * sizeof(Key));
        PyMem_Free(self->keys);
    }
    self->keys = table;
    self->nkeys = n;
    Py_INCREF(destination);
    Py_XSETREF(self->destination, destination);
    Py_INCREF(event_id);
    Py_XSETREF(self->event_id, event_id);
    self->max_token_chars = max_chars;
    return 0;
}

static void Verifier_dealloc(Verifier *self) {
    if (self->keys) {
        OPENSSL_cleanse(self->keys, (size_t)self->nkeys * sizeof(Key));
        PyMem_Free(self->keys);
    }
    Py_XDECREF(self->destination);
    Py_XDECREF(self->event_id);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Whether the MAC of `data[0:n]` (whose last MAC_BYTES are the MAC) checks with a listed key. */
static int mac_checks(const Verifier *self, const unsigned char *data, Py_ssize_t n) {
    const unsigned char *mac = data + n - MAC_BYTES;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    int ok = 0;
    for (Py_ssize_t i = 0; i < self->nkeys && !ok; i++) {
        if (memcmp(self->keys[i].id, data + 1, KEY_ID_BYTES) != 0) continue;
        hmac(&self->keys[i], data, (size_t)(n - MAC_BYTES), digest);
        ok = CRYPTO_memcmp(digest, mac, MAC_BYTES) == 0;
    }
    return ok;
}

static PyObject *Verifier_line(Verifier *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyBytes_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "line(token, is_open, ip, user_agent, method, account: bytes)");
        return NULL;
    }
    PyObject *token = args[0];
    int is_open = PyObject_IsTrue(args[1]);
    if (is_open < 0) return NULL;
    if (!PyUnicode_Check(token) || !PyUnicode_IS_ASCII(token) ||
        PyUnicode_GET_LENGTH(token) > self->max_token_chars) {
        Py_RETURN_NONE;
    }
    const unsigned char *chars = PyUnicode_1BYTE_DATA(token);
    Py_ssize_t n = PyUnicode_GET_LENGTH(token);
    unsigned char data[MAX_DECODED];
    if (n / 4 * 3 + 3 > MAX_DECODED) Py_RETURN_NONE;
    Py_ssize_t size = b64url_decode(chars, n, data);
    if (size < HEADER + MAC_BYTES) Py_RETURN_NONE;
    Py_ssize_t header;
    if (data[0] >> 4 == VERSION) {
        header = HEADER;
    } else if (data[0] >> 4 == VERSION_BOUND) {
        header = HEADER + ACCOUNT_TAG_BYTES;
        if (size < header + MAC_BYTES) Py_RETURN_NONE;
        /* Bound to another account than the one this host serves: not answered here. */
        Py_ssize_t wanted = PyBytes_GET_SIZE(args[5]);
        if (wanted != 0 && (wanted != ACCOUNT_TAG_BYTES ||
                            memcmp(PyBytes_AS_STRING(args[5]), data + HEADER, ACCOUNT_TAG_BYTES))) {
            Py_RETURN_NONE;
        }
    } else {
        Py_RETURN_NONE;
    }
    int kind = data[0] & 0x0F;
    if (kind != (is_open ? KIND_OPEN : KIND_CLICK) || !mac_checks(self, data, size)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t body = size - MAC_BYTES;
    unsigned long long link = 0;
    int has_link = 0, honeypot = 0;
    PyObject *destination = NULL; /* a new reference, or NULL for none */
    if (kind == KIND_OPEN) {
        if (body != header) Py_RETURN_NONE;
    } else {
        Py_ssize_t pos = header;
        int shift = 0, done = 0;
        for (int i = 0; i < 5 && pos < body; i++, pos++) {
            unsigned char byte = data[pos];
            link |= (unsigned long long)(byte & 0x7F) << shift;
            shift += 7;
            if (!(byte & 0x80)) {
                if (i && byte == 0) Py_RETURN_NONE; /* not canonical */
                done = 1;
                pos++;
                break;
            }
        }
        if (!done || pos >= body) Py_RETURN_NONE;
        unsigned char flags = data[pos];
        if (flags & ~KNOWN_FLAGS) Py_RETURN_NONE;
        honeypot = (flags & FLAG_HONEYPOT) != 0;
        has_link = 1;
        PyObject *raw = PyBytes_FromStringAndSize((const char *)data + pos + 1, body - pos - 1);
        if (raw == NULL) return NULL;
        PyObject *call[2] = {raw, (flags & FLAG_DEFLATED) ? Py_True : Py_False};
        destination = PyObject_Vectorcall(self->destination, call, 2, NULL);
        Py_DECREF(raw);
        if (destination == NULL) {
            PyErr_Clear(); /* refused: the reference says why */
            Py_RETURN_NONE;
        }
        if (!PyUnicode_Check(destination)) {
            Py_DECREF(destination);
            Py_RETURN_NONE;
        }
        if (PyUnicode_GET_LENGTH(destination) == 0) {
            Py_CLEAR(destination);
            if (!honeypot) Py_RETURN_NONE;
        }
    }

    PyObject *event_id = PyObject_CallNoArgs(self->event_id);
    if (event_id == NULL) {
        Py_XDECREF(destination);
        return NULL;
    }
    Py_ssize_t lens[5];
    const char *texts[5];
    PyObject *fields[5] = {destination, args[2], args[3], args[4], event_id};
    for (int i = 0; i < 5; i++) {
        texts[i] = NULL;
        lens[i] = 0;
        if (fields[i] == NULL) continue;
        if (!PyUnicode_Check(fields[i])) {
            Py_XDECREF(destination);
            Py_DECREF(event_id);
            PyErr_SetString(PyExc_TypeError, "ip, user_agent, method and event ids must be str");
            return NULL;
        }
        texts[i] = PyUnicode_AsUTF8AndSize(fields[i], &lens[i]);
        if (texts[i] == NULL) { /* lone surrogates: the reference path decides */
            PyErr_Clear();
            Py_XDECREF(destination);
            Py_DECREF(event_id);
            Py_RETURN_NONE;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned long long at_ms =
        (unsigned long long)now.tv_sec * 1000ULL + (unsigned long long)now.tv_nsec / 1000000ULL;

    Py_ssize_t bound = 256 + 6 * (lens[0] + lens[1] + lens[2] + lens[3] + lens[4]);
    PyObject *line = PyBytes_FromStringAndSize(NULL, bound);
    if (line == NULL) {
        Py_XDECREF(destination);
        Py_DECREF(event_id);
        return NULL;
    }
    char *start = PyBytes_AS_STRING(line), *p = start;
    p = put(p, "{\"id\":");
    p = put_json(p, texts[4], lens[4]);
    Py_DECREF(event_id); /* texts[4] is not used after this */
    p = put(p, is_open ? ",\"kind\":\"open\",\"message_id\":\"" : ",\"kind\":\"click\",\"message_id\":\"");
    memcpy(p, chars + MESSAGE_ID_CHAR0, MESSAGE_ID_CHARS);
    p += MESSAGE_ID_CHARS;
    p = put(p, "\",\"link\":");
    p = has_link ? put_int(p, link) : put(p, "null");
    p = put(p, ",\"destination\":");
    p = destination ? put_json(p, texts[0], lens[0]) : put(p, "null");
    p = put(p, ",\"at_ms\":");
    p = put_int(p, at_ms);
    p = put(p, ",\"ip\":");
    p = put_json(p, texts[1], lens[1]);
    p = put(p, ",\"user_agent\":");
    p = put_json(p, texts[2], lens[2]);
    p = put(p, ",\"method\":");
    p = put_json(p, texts[3], lens[3]);
    p = put(p, honeypot ? ",\"honeypot\":true}\n" : ",\"honeypot\":false}\n");
    if (_PyBytes_Resize(&line, p - start) < 0) {
        Py_XDECREF(destination);
        return NULL;
    }
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(line);
        Py_XDECREF(destination);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, line);
    if (destination == NULL) {
        destination = Py_None;
        Py_INCREF(destination);
    }
    PyTuple_SET_ITEM(result, 1, destination);
    return result;
}

static PyMethodDef Verifier_methods[] = {
    {"line", (PyCFunction)(void (*)(void))Verifier_line, METH_FASTCALL,
     "line(token, is_open, ip, user_agent, method, account) -> (spool line, destination) or "
     "None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VerifierType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pixeltrail.tracking._hitline.Verifier",
    .tp_basicsize = sizeof(Verifier),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Verifies tracking tokens and writes their hits' spool lines.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Verifier_init,
    .tp_dealloc = (destructor)Verifier_dealloc,
    .tp_methods = Verifier_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hitline", "Tracking tokens verified and their hits' spool lines, in C.",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hitline(void) {
    init_b64();
    if (PyType_Ready(&VerifierType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&VerifierType);
    if (PyModule_AddObject(m, "Verifier", (PyObject *)&VerifierType) < 0) {
        Py_DECREF(&VerifierType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
