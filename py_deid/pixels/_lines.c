/* The text screen's count in one compiled pass (py_deid.pixels.text_presence, native builds only).
 *
 * text_presence finds candidate lines of text with numpy: the frame's ink at nine thresholds, strokes counted
 * per row of each 64 px column, then runs of busy rows between quiet rows. On an image without text that is
 * some forty numpy calls a frame, and each costs several microseconds more in a batch (after the header's work)
 * than its data does: most of what `--pixels auto` costs over `--pixels off`. This module does the same count
 * and the same band rule in one call and returns the same pieces in the same order; text_presence uses it where
 * it was built and falls back to numpy elsewhere (the browser's wheel is pure Python). The rule itself, its
 * constants and its reasons live in text_presence.py: this file only repeats it, and
 * tests/pixels/test_lines_compiled.py checks that both give the same pieces.
 *
 * pieces(samples, rows, columns, kind, cuts, edges, min_line, max_line, quiet_rows, busy, first_only)
 *   samples: the frame, rows x columns samples of one type in native byte order (a buffer)
 *   kind: "B" "b" "H" "h" "I" "i" (unsigned and signed 8, 16, 32 bits)
 *   cuts: one (above, cut) per threshold: a pixel is ink where (sample >= cut) == above
 *   edges: the columns of the frame, as (x0, x1) pairs flattened
 * returns [(threshold, x, y, width, height)]: each band of busy rows of a column at a threshold, narrowed to
 * the columns its ink spans, ordered by threshold, column, row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CUTS 16
#define PAD 6 /* rows looked at above and below a run for quiet rows (the frame's edge counts as quiet) */

typedef struct {
    int above[MAX_CUTS];
    int64_t cut[MAX_CUTS];
    int n;
} Cuts;

/* Each pixel's ink at every threshold as the bits of one word (bit k: threshold k). Every cut is first made one
 * that fits the samples' type (a cut outside it is "always" or "never": the same comparison with the type's
 * least value), so that all comparisons are made in that type; the pass over a row does all thresholds at
 * once, in registers, which the compiler turns into vector code for the usual nine. */
typedef struct {
    int64_t at[MAX_CUTS]; /* ink where (sample >= at) differs from the bit of flip */
    uint16_t flip;
    int n;
} Ink;

static void ink_for(const Cuts *c, int64_t lo, int64_t hi, Ink *ink) {
    ink->n = c->n;
    ink->flip = 0;
    for (int k = 0; k < c->n; k++) {
        int above = c->above[k] != 0;
        int64_t at = c->cut[k];
        if (at <= lo || at > hi) { /* every sample is >= cut (at <= lo), or none is */
            above = (at <= lo) == above; /* ink everywhere: ">= lo"; nowhere: "< lo" */
            at = lo;
        }
        ink->at[k] = at;
        if (!above) ink->flip |= (uint16_t)(1u << k);
    }
}

#define INK_ROW(T)                                                                                              \
    static void ink_row_##T(const void *samples, Py_ssize_t w, const Ink *c, uint16_t *ink) {                  \
        const T *row = (const T *)samples;                                                                     \
        if (c->n == 9) {                                                                                       \
            const T t0 = (T)c->at[0], t1 = (T)c->at[1], t2 = (T)c->at[2], t3 = (T)c->at[3], t4 = (T)c->at[4],  \
                    t5 = (T)c->at[5], t6 = (T)c->at[6], t7 = (T)c->at[7], t8 = (T)c->at[8];                    \
            const uint16_t flip = c->flip;                                                                     \
            for (Py_ssize_t x = 0; x < w; x++) {                                                               \
                const T v = row[x];                                                                            \
                ink[x] = (uint16_t)(((v >= t0) | (v >= t1) << 1 | (v >= t2) << 2 | (v >= t3) << 3 |            \
                                     (v >= t4) << 4 | (v >= t5) << 5 | (v >= t6) << 6 | (v >= t7) << 7 |       \
                                     (v >= t8) << 8) ^ flip);                                                  \
            }                                                                                                  \
            return;                                                                                            \
        }                                                                                                      \
        for (Py_ssize_t x = 0; x < w; x++) {                                                                   \
            unsigned m = 0;                                                                                    \
            for (int k = 0; k < c->n; k++) m |= (unsigned)(row[x] >= (T)c->at[k]) << k;                        \
            ink[x] = (uint16_t)(m ^ c->flip);                                                                  \
        }                                                                                                      \
    }

INK_ROW(uint8_t)
INK_ROW(int8_t)
INK_ROW(uint16_t)
INK_ROW(int16_t)
INK_ROW(uint32_t)
INK_ROW(int32_t)

typedef void (*InkRow)(const void *, Py_ssize_t, const Ink *, uint16_t *);

/* The least and the greatest sample, in one pass (numpy's min and max are two). */
#define EXTREMES(T)                                                                                             \
    static void extremes_##T(const void *samples, Py_ssize_t n, int64_t *least, int64_t *most) {             \
        const T *v = (const T *)samples;                                                                       \
        T lo = v[0], hi = v[0];                                                                                \
        for (Py_ssize_t i = 1; i < n; i++) {                                                                   \
            lo = v[i] < lo ? v[i] : lo;                                                                        \
            hi = v[i] > hi ? v[i] : hi;                                                                        \
        }                                                                                                      \
        *least = lo;                                                                                           \
        *most = hi;                                                                                            \
    }

EXTREMES(uint8_t)
EXTREMES(int8_t)
EXTREMES(uint16_t)
EXTREMES(int16_t)
EXTREMES(uint32_t)
EXTREMES(int32_t)

typedef void (*Extremes)(const void *, Py_ssize_t, int64_t *, int64_t *);

/* The sample types it takes, by the code compiled.py gives them: size, range, and the loops for each. */
typedef struct {
    int kind;
    Py_ssize_t size;
    int64_t lo, hi;
    InkRow ink_row;
    Extremes extremes;
} SampleType;

static const SampleType TYPES[] = {
    {'B', 1, 0, UINT8_MAX, ink_row_uint8_t, extremes_uint8_t},
    {'b', 1, INT8_MIN, INT8_MAX, ink_row_int8_t, extremes_int8_t},
    {'H', 2, 0, UINT16_MAX, ink_row_uint16_t, extremes_uint16_t},
    {'h', 2, INT16_MIN, INT16_MAX, ink_row_int16_t, extremes_int16_t},
    {'I', 4, 0, UINT32_MAX, ink_row_uint32_t, extremes_uint32_t},
    {'i', 4, INT32_MIN, INT32_MAX, ink_row_int32_t, extremes_int32_t},
};

static const SampleType *type_of(int kind) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].kind == kind) return &TYPES[i];
    return NULL;
}

/* Strokes per row of a column, as far as the band rule needs them: for every threshold at once (a bit each),
 * whether the row has none (quiet), and whether it has three or more (busy). A stroke starts at a pixel of ink
 * whose left neighbour in the column is no ink (starts[]), and the starts are counted up to three with three
 * masks (one or more, two or more, three or more), four pixels to a 64-bit word, the words' four parts joined
 * at the end. */
static inline void join_part(uint16_t po, uint16_t pt, uint16_t ph, uint16_t *o, uint16_t *t, uint16_t *h) {
    *h |= ph | (*t & po) | (*o & pt);
    *t |= pt | (*o & po);
    *o |= po;
}

static void count_column(const uint16_t *starts, Py_ssize_t n, uint16_t *quiet, uint16_t *busy) {
    /* two sets of masks, eight pixels a step: the two chains of dependent operations run side by side */
    uint64_t one = 0, two = 0, three = 0, one_b = 0, two_b = 0, three_b = 0;
    Py_ssize_t x = 0;
    for (; x + 8 <= n; x += 8) {
        uint64_t s, s_b;
        memcpy(&s, starts + x, sizeof s);
        memcpy(&s_b, starts + x + 4, sizeof s_b);
        three |= two & s;
        two |= one & s;
        one |= s;
        three_b |= two_b & s_b;
        two_b |= one_b & s_b;
        one_b |= s_b;
    }
    uint16_t o = 0, t = 0, h = 0;
    for (int part = 0; part < 4; part++) {
        join_part((uint16_t)(one >> (16 * part)), (uint16_t)(two >> (16 * part)), (uint16_t)(three >> (16 * part)),
                  &o, &t, &h);
        join_part((uint16_t)(one_b >> (16 * part)), (uint16_t)(two_b >> (16 * part)),
                  (uint16_t)(three_b >> (16 * part)), &o, &t, &h);
    }
    for (; x < n; x++) {
        h |= t & starts[x];
        t |= o & starts[x];
        o |= starts[x];
    }
    *quiet = (uint16_t)~o;
    *busy = h;
}

typedef struct {
    int min_line, max_line, quiet_rows;
} Rule;

/* The masks of a lane (threshold k of column j) at row y; rows outside the frame are quiet and not busy. */
static inline int busy_at(const uint16_t *busy, Py_ssize_t h, Py_ssize_t y, int k) {
    return y >= 0 && y < h && (busy[y] >> k & 1);
}

static inline int quiet_at(const uint16_t *quiet, Py_ssize_t h, Py_ssize_t y, int k) {
    return y < 0 || y >= h || (quiet[y] >> k & 1);
}

/* Busy rows joined across single rows, as text_presence._bands_numpy joins them. */
static inline int joined_at(const uint16_t *busy, Py_ssize_t h, Py_ssize_t y, int k) {
    return busy_at(busy, h, y, k) || (busy_at(busy, h, y - 1, k) && busy_at(busy, h, y + 1, k));
}

static int quiet_count(const uint16_t *quiet, Py_ssize_t h, Py_ssize_t from, int k) {
    int n = 0;
    for (Py_ssize_t y = from; y < from + PAD; y++) n += quiet_at(quiet, h, y, k);
    return n;
}

/* The band's columns that hold ink at threshold k: (first, last), or (-1, -1). */
static void ink_extent(const char *samples, Py_ssize_t w, Py_ssize_t size, InkRow ink_row, const Ink *c, int k,
                       Py_ssize_t x0, Py_ssize_t x1, Py_ssize_t y0, Py_ssize_t y1, uint16_t *ink,
                       Py_ssize_t *first, Py_ssize_t *last) {
    *first = *last = -1;
    for (Py_ssize_t y = y0; y < y1; y++) {
        ink_row(samples + (y * w + x0) * size, x1 - x0, c, ink);
        for (Py_ssize_t x = 0; x < x1 - x0; x++)
            if (ink[x] >> k & 1) {
                if (*first < 0 || x0 + x < *first) *first = x0 + x;
                if (x0 + x > *last) *last = x0 + x;
            }
    }
}

static PyObject *pieces(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    Py_ssize_t h, w;
    int kind, busy_strokes, first_only;
    PyObject *cut_seq, *edge_seq;
    Rule rule;
    if (!PyArg_ParseTuple(args, "y*nnCOOiiiip", &buf, &h, &w, &kind, &cut_seq, &edge_seq, &rule.min_line,
                          &rule.max_line, &rule.quiet_rows, &busy_strokes, &first_only))
        return NULL;
    PyObject *out = NULL, *cuts_fast = NULL, *edges_fast = NULL;
    uint16_t *quiet = NULL, *busy = NULL, *ink = NULL, *starts = NULL, *any_busy = NULL;
    Py_ssize_t *x0s = NULL, *x1s = NULL;
    const SampleType *type = type_of(kind);
    Py_ssize_t size = type ? type->size : 0;
    InkRow ink_row = type ? type->ink_row : NULL;
    Cuts c;
    Ink at;
    if (type == NULL) {
        PyErr_SetString(PyExc_ValueError, "samples of an unknown type");
        goto done;
    }
    if (busy_strokes != 3) { /* count_column counts to three */
        PyErr_SetString(PyExc_ValueError, "a busy row is one of three strokes or more");
        goto done;
    }
    if (h < 0 || w < 1 || buf.len < h * w * size) {
        PyErr_SetString(PyExc_ValueError, "samples shorter than rows x columns");
        goto done;
    }
    cuts_fast = PySequence_Fast(cut_seq, "cuts must be a sequence");
    edges_fast = PySequence_Fast(edge_seq, "edges must be a sequence");
    if (cuts_fast == NULL || edges_fast == NULL) goto done;
    c.n = (int)PySequence_Fast_GET_SIZE(cuts_fast);
    if (c.n < 1 || c.n > MAX_CUTS) {
        PyErr_SetString(PyExc_ValueError, "1 to 16 cuts");
        goto done;
    }
    for (int k = 0; k < c.n; k++) {
        long long cut;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(cuts_fast, k), "pL", &c.above[k], &cut)) goto done;
        c.cut[k] = cut;
    }
    ink_for(&c, type->lo, type->hi, &at);
    Py_ssize_t n_edges = PySequence_Fast_GET_SIZE(edges_fast);
    Py_ssize_t lanes = n_edges / 2;
    if (n_edges % 2 || lanes < 1) {
        PyErr_SetString(PyExc_ValueError, "edges must be (x0, x1) pairs");
        goto done;
    }
    x0s = PyMem_Malloc(lanes * sizeof(Py_ssize_t));
    x1s = PyMem_Malloc(lanes * sizeof(Py_ssize_t));
    quiet = PyMem_Malloc((size_t)(lanes * (h ? h : 1)) * sizeof(uint16_t));
    busy = PyMem_Malloc((size_t)(lanes * (h ? h : 1)) * sizeof(uint16_t));
    ink = PyMem_Malloc((size_t)w * sizeof(uint16_t));
    starts = PyMem_Malloc((size_t)w * sizeof(uint16_t));
    any_busy = PyMem_Malloc(lanes * sizeof(uint16_t));
    if (!x0s || !x1s || !quiet || !busy || !ink || !starts || !any_busy) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < lanes; j++) {
        x0s[j] = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(edges_fast, 2 * j));
        x1s[j] = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(edges_fast, 2 * j + 1));
        if (PyErr_Occurred()) goto done;
        if (x0s[j] < 0 || x1s[j] > w || x0s[j] >= x1s[j]) {
            PyErr_SetString(PyExc_ValueError, "a column outside the frame");
            goto done;
        }
    }

    const char *samples = (const char *)buf.buf;
    Py_BEGIN_ALLOW_THREADS
    /* quiet[j * h + y], busy[j * h + y]: row y of column j, a bit per threshold */
    for (Py_ssize_t y = 0; y < h; y++) {
        ink_row(samples + y * w * size, w, &at, ink);
        starts[0] = ink[0];
        for (Py_ssize_t x = 1; x < w; x++) starts[x] = ink[x] & (uint16_t)~ink[x - 1];
        for (Py_ssize_t j = 0; j < lanes; j++) {
            starts[x0s[j]] = ink[x0s[j]]; /* a stroke at the column's left edge */
            count_column(starts + x0s[j], x1s[j] - x0s[j], quiet + j * h + y, busy + j * h + y);
        }
    }
    Py_END_ALLOW_THREADS

    out = PyList_New(0);
    if (out == NULL) goto done;
    for (Py_ssize_t j = 0; j < lanes; j++) {
        any_busy[j] = 0;
        for (Py_ssize_t y = 0; y < h; y++) any_busy[j] |= busy[j * h + y];
    }
    for (int k = 0; k < c.n; k++)
        for (Py_ssize_t j = 0; j < lanes; j++) {
            const uint16_t *lane_busy = busy + j * h, *lane_quiet = quiet + j * h;
            if (!(any_busy[j] >> k & 1)) continue; /* no busy row: no band */
            Py_ssize_t y = 0;
            while (y < h) {
                if (!joined_at(lane_busy, h, y, k)) {
                    y++;
                    continue;
                }
                Py_ssize_t start = y;
                while (y < h && joined_at(lane_busy, h, y, k)) y++;
                Py_ssize_t tall = y - start; /* the run is start .. y - 1 */
                if (tall < rule.min_line || tall > rule.max_line) continue;
                if (quiet_count(lane_quiet, h, start - PAD, k) < rule.quiet_rows ||
                    quiet_count(lane_quiet, h, y, k) < rule.quiet_rows)
                    continue;
                Py_ssize_t first, last;
                ink_extent(samples, w, size, ink_row, &at, k, x0s[j], x1s[j], start, y, ink, &first, &last);
                PyObject *piece = first >= 0 ? Py_BuildValue("(innnn)", k, first, start, last - first + 1, tall)
                                             : Py_BuildValue("(innnn)", k, x0s[j], start, x1s[j] - x0s[j], tall);
                if (piece == NULL || PyList_Append(out, piece) < 0) {
                    Py_XDECREF(piece);
                    Py_CLEAR(out);
                    goto done;
                }
                Py_DECREF(piece);
                if (first_only) goto done;
            }
        }

done:
    PyBuffer_Release(&buf);
    Py_XDECREF(cuts_fast);
    Py_XDECREF(edges_fast);
    PyMem_Free(quiet);
    PyMem_Free(busy);
    PyMem_Free(ink);
    PyMem_Free(starts);
    PyMem_Free(any_busy);
    PyMem_Free(x0s);
    PyMem_Free(x1s);
    return out;
}

static PyObject *extremes(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    int kind;
    if (!PyArg_ParseTuple(args, "y*C", &buf, &kind)) return NULL;
    const SampleType *type = type_of(kind);
    if (type == NULL || buf.len < type->size) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, type == NULL ? "samples of an unknown type" : "no samples");
        return NULL;
    }
    int64_t least = 0, most = 0;
    Py_BEGIN_ALLOW_THREADS
    type->extremes(buf.buf, buf.len / type->size, &least, &most);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return Py_BuildValue("(LL)", (long long)least, (long long)most);
}

static PyMethodDef methods[] = {
    {"pieces", pieces, METH_VARARGS, "The text screen's candidate pieces of a frame (see text_presence)."},
    {"extremes", extremes, METH_VARARGS, "(least, greatest) of the samples."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lines", "The text screen's count, compiled.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__lines(void) { return PyModule_Create(&module); }
