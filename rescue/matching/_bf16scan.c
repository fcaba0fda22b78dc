/*
 * Gallery scan kernel for rescue.matching.scan (issue 16, "Speed at scale").
 *
 * A face's vector is kept as two uint16 planes (rescue.matching.gallery): the high
 * and the low 16 bits of each float32 value. The high plane alone is bfloat16 (the
 * float32 with its mantissa truncated to 7 bits), so a scan that reads only it
 * reads half the bytes; the planes together give the float32 value back exactly
 * for the re-check. These functions compute, for rows 0..n-1 and probes 0..q-1,
 *
 *     s[k][i] = sq[i] - 2 * p_k . bf16(hi_i)
 *
 * the squared distance to the truncated vector less the probe's own |p|² (sq[i]
 * holds |bf16(hi_i)|²). Each row is read once and converted once, whatever the
 * number of probes (a photo with several faces costs little more than one face).
 * p holds q rounded up to a multiple of four rows, zeros beyond q
 * (rescue.matching.scan pads them).
 *
 * Paths, chosen at run time (rescue_scan_force_path lets tests take each):
 * - AVX2 + FMA for the gallery's 128 dimensions: rows in tiles that stay in L1,
 *   probes in groups of up to four with code generated per group size, and rows
 *   prefetched ahead (measured on this project's 2-core Xeon VM, one thread, rows
 *   from memory: 87 -> 40 cycles per row for three probes of 96 dimensions; over
 *   4 M faces three probes then take 1.1-1.25x the time of one);
 * - AVX (+ FMA where the CPU has it), any width that is a multiple of 8;
 * - a portable loop elsewhere.
 * Built by `make install` (Makefile, SCAN_LIB); loaded with ctypes, which releases
 * the GIL during the call, so Python threads scan row ranges in parallel. No
 * allocation, no global state but the forced path.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCAN_X86 1
#endif

#define MAX_DIM 128

/* Where a scan's values go: out[k * ld + i] (dense: limit NULL), or (row, probe,
 * s) appended for s <= limit[k], at most cap of them. */
typedef struct {
    float *out;
    size_t ld;
    const float *limit;
    int64_t *rows;
    int32_t *probes;
    float *vals;
    int64_t cap;
    int64_t count;
} sink_t;

static inline void emit(sink_t *o, size_t i, int k, float s) {
    if (o->limit == NULL) {
        o->out[(size_t)k * o->ld + i] = s;
    } else if (s <= o->limit[k]) {
        o->rows[o->count] = (int64_t)i;
        o->probes[o->count] = k;
        o->vals[o->count] = s;
        o->count++;
    }
}

/* The bound's buffer cannot take one more row's values: stop before row i. */
static inline int full(const sink_t *o, int q) {
    return o->limit != NULL && o->count + q > o->cap;
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#define SCAN_ARGS \
    const uint16_t *hi, size_t dh, const float *sq, size_t n, const float *p, int q, sink_t *o

static size_t scan_portable(SCAN_ARGS) {
    float x[MAX_DIM];
    for (size_t i = 0; i < n; i++) {
        if (full(o, q)) return i;
        const uint16_t *row = hi + i * dh;
        for (size_t j = 0; j < dh; j++) x[j] = bf16_to_float(row[j]);
        for (int k = 0; k < q; k++) {
            const float *pk = p + (size_t)k * dh;
            float dot = 0.0f;
            for (size_t j = 0; j < dh; j++) dot += pk[j] * x[j];
            emit(o, i, k, sq[i] - 2.0f * dot);
        }
    }
    return n;
}

#ifdef SCAN_X86
/* ---- AVX (+ FMA), any width that is a multiple of 8 -----------------------------
 * The row converted once into registers (bf16 -> float32 is a 16-bit shift, done
 * with SSE2 unpacks), then four probes at a time, four accumulator chains reduced
 * together; one probe alone runs three chains. Defined with FMA and, for CPUs
 * without it, with AVX alone. */
__attribute__((target("avx"))) static inline float hsum256(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

#define SCAN_AVX_BODY(MADD)                                                              \
    __m256 x[MAX_DIM / 8];                                                               \
    const size_t blocks = dh / 8;                                                        \
    for (size_t i = 0; i < n; i++) {                                                     \
        if (full(o, q)) return i;                                                        \
        const uint16_t *row = hi + i * dh;                                               \
        for (size_t b = 0; b < blocks; b++) {                                            \
            __m128i h = _mm_loadu_si128((const __m128i *)(row + 8 * b));                 \
            __m128 lo = _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h));    \
            __m128 up = _mm_castsi128_ps(_mm_unpackhi_epi16(_mm_setzero_si128(), h));    \
            x[b] = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), up, 1);              \
        }                                                                                \
        if (q == 1) {                                                                    \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                   \
            __m256 a2 = _mm256_setzero_ps();                                             \
            size_t b = 0;                                                                \
            for (; b + 2 < blocks; b += 3) {                                             \
                a0 = MADD(x[b], _mm256_loadu_ps(p + 8 * b), a0);                         \
                a1 = MADD(x[b + 1], _mm256_loadu_ps(p + 8 * b + 8), a1);                 \
                a2 = MADD(x[b + 2], _mm256_loadu_ps(p + 8 * b + 16), a2);                \
            }                                                                            \
            for (; b < blocks; b++) a0 = MADD(x[b], _mm256_loadu_ps(p + 8 * b), a0);    \
            emit(o, i, 0, sq[i] - 2.0f * hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), a2))); \
            continue;                                                                    \
        }                                                                                \
        for (int k0 = 0; k0 < q; k0 += 4) {                                              \
            const float *p0 = p + (size_t)k0 * dh;                                       \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                   \
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                   \
            for (size_t b = 0; b < blocks; b++) {                                        \
                a0 = MADD(x[b], _mm256_loadu_ps(p0 + 8 * b), a0);                        \
                a1 = MADD(x[b], _mm256_loadu_ps(p0 + dh + 8 * b), a1);                   \
                a2 = MADD(x[b], _mm256_loadu_ps(p0 + 2 * dh + 8 * b), a2);               \
                a3 = MADD(x[b], _mm256_loadu_ps(p0 + 3 * dh + 8 * b), a3);               \
            }                                                                            \
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));    \
            __m128 dot = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); \
            float sk[4];                                                                 \
            _mm_storeu_ps(sk, _mm_sub_ps(_mm_set1_ps(sq[i]), _mm_add_ps(dot, dot)));     \
            const int m = q - k0 < 4 ? q - k0 : 4;                                       \
            for (int j = 0; j < m; j++) emit(o, i, k0 + j, sk[j]);                       \
        }                                                                                \
    }                                                                                    \
    return n;

#define MADD_AVX(a, b, c) _mm256_add_ps((c), _mm256_mul_ps((a), (b)))
#define MADD_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))

__attribute__((target("avx"))) static size_t scan_avx(SCAN_ARGS) { SCAN_AVX_BODY(MADD_AVX) }

__attribute__((target("avx,fma"))) static size_t scan_fma(SCAN_ARGS) { SCAN_AVX_BODY(MADD_FMA) }

/* ---- AVX2 + FMA for the gallery's vectors (128 dimensions) -----------------------
 * Rows go in tiles of TILE (their values stay in L1); within a tile, probes in
 * groups of up to four, each group's code generated for its size G so that its
 * 2·G accumulators stay in registers. Each 16-value chunk of a row is loaded once
 * and converted with two 256-bit unpacks (1.5 instructions per 8 values instead
 * of 4) and multiplied into every probe of the group; two accumulators per probe
 * keep the dependency chains short. Rows PREFETCH_ROWS ahead are prefetched:
 * without it the hardware streamer left the loop waiting on memory (one thread,
 * 2 M rows of 96 dimensions: three probes 87 cycles per row without, 39-40 with
 * 8-16 rows ahead, 50 with 32; one probe 39 -> 34; two threads over 4 M rows of
 * 128: one / three probes 63 / 87 ms without, 39-43 / 44-47 ms with 6-8 rows
 * ahead, 44-62 / 45-50 ms with 12). */
#define TILE 64
#define WIDTH 128
#define PREFETCH_ROWS 8
#define MAX_PERMUTED 64

/* The unpacks work within each 128-bit lane: the low result holds values 0-3 and
 * 8-11 of a chunk, the high one 4-7 and 12-15. Probes are permuted the same way
 * once per call, which leaves every dot product unchanged. */
static void lane_order(const float *p, float *out, size_t rows, size_t dh) {
    static const int order[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < dh; c += 16)
            for (int j = 0; j < 16; j++) out[r * dh + c + j] = p[r * dh + c + order[j]];
}

#define AVX2 __attribute__((target("avx2,fma")))

/* Rows 0..m-1 of a tile against G probes (p: G permuted rows of WIDTH):
 * dst[k * dld + i] = sq[i] - 2 p_k . x_i. */
AVX2 __attribute__((always_inline)) static inline void tile_group(const int G, const uint16_t *hi,
                                                                 const float *sq, size_t m,
                                                                 const float *p, float *dst,
                                                                 size_t dld) {
    for (size_t i = 0; i < m; i++) {
        const uint16_t *row = hi + i * WIDTH;
        const char *ahead = (const char *)(row + PREFETCH_ROWS * WIDTH);
        for (int line = 0; line < WIDTH * 2; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
        __m256 a[4][2];
        for (int k = 0; k < G; k++) a[k][0] = a[k][1] = _mm256_setzero_ps();
        for (int c = 0; c < WIDTH / 16; c++) {
            __m256i h = _mm256_loadu_si256((const __m256i *)(row + 16 * c));
            __m256 xl = _mm256_castsi256_ps(_mm256_unpacklo_epi16(_mm256_setzero_si256(), h));
            __m256 xh = _mm256_castsi256_ps(_mm256_unpackhi_epi16(_mm256_setzero_si256(), h));
            for (int k = 0; k < G; k++) {
                a[k][0] = _mm256_fmadd_ps(xl, _mm256_loadu_ps(p + k * WIDTH + 16 * c), a[k][0]);
                a[k][1] = _mm256_fmadd_ps(xh, _mm256_loadu_ps(p + k * WIDTH + 16 * c + 8), a[k][1]);
            }
        }
        __m256 z = _mm256_setzero_ps();
        __m256 s0 = _mm256_add_ps(a[0][0], a[0][1]);
        __m256 s1 = G > 1 ? _mm256_add_ps(a[1][0], a[1][1]) : z;
        __m256 s2 = G > 2 ? _mm256_add_ps(a[2][0], a[2][1]) : z;
        __m256 s3 = G > 3 ? _mm256_add_ps(a[3][0], a[3][1]) : z;
        __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
        __m128 dot = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        float sk[4];
        _mm_storeu_ps(sk, _mm_sub_ps(_mm_set1_ps(sq[i]), _mm_add_ps(dot, dot)));
        for (int k = 0; k < G; k++) dst[k * dld + i] = sk[k];
    }
}

#define TILE_FN(G)                                                                       \
    AVX2 static void tile_##G(const uint16_t *hi, const float *sq, size_t m, const float *p, \
                              float *dst, size_t dld) {                                  \
        tile_group(G, hi, sq, m, p, dst, dld);                                           \
    }
TILE_FN(1)
TILE_FN(2)
TILE_FN(3)
TILE_FN(4)

typedef void (*tile_fn)(const uint16_t *, const float *, size_t, const float *, float *, size_t);

static size_t scan_avx2(SCAN_ARGS) {
    static const tile_fn by_size[5] = {NULL, tile_1, tile_2, tile_3, tile_4};
    (void)dh; /* WIDTH: scan() checked */
    float permuted[MAX_PERMUTED * WIDTH];
    float buf[MAX_PERMUTED * TILE];
    lane_order(p, permuted, (size_t)q, WIDTH);
    for (size_t t0 = 0; t0 < n; t0 += TILE) {
        size_t m = n - t0 < TILE ? n - t0 : TILE;
        float *dst = o->limit == NULL ? o->out + t0 : buf;
        size_t dld = o->limit == NULL ? o->ld : TILE;
        for (int k0 = 0; k0 < q; k0 += 4) {
            int g = q - k0 < 4 ? q - k0 : 4;
            by_size[g](hi + t0 * WIDTH, sq + t0, m, permuted + (size_t)k0 * WIDTH,
                       dst + (size_t)k0 * dld, dld);
        }
        if (o->limit == NULL) continue;
        for (size_t r = 0; r < m; r++) { /* a bound: in row order, as the others */
            if (full(o, q)) return t0 + r;
            for (int k = 0; k < q; k++) emit(o, t0 + r, k, buf[(size_t)k * TILE + r]);
        }
    }
    return n;
}
#endif

/* Which path scan() takes: 0 the best the CPU has; 1 portable, 2 AVX, 3 AVX+FMA
 * for any width, 4 AVX2 for 128 dimensions (tests use it to check every path on
 * one machine; a path the CPU or the shape does not allow falls back to the next
 * best). */
static int forced_path = 0;

void rescue_scan_force_path(int path) { forced_path = path; }

/* The path scan() takes for rows of dh values and q probes: 1 portable, 2 AVX,
 * 3 AVX+FMA, 4 AVX2 (the CPU's best, unless forced_path says otherwise). */
static int choose(size_t dh, int q) {
#ifdef SCAN_X86
    const int f = forced_path;
    int fits = dh % 8 == 0 && dh <= MAX_DIM && f != 1;
    int avx = fits && __builtin_cpu_supports("avx");
    int fma = avx && __builtin_cpu_supports("fma") && f != 2;
    int avx2 = fma && __builtin_cpu_supports("avx2") && (f == 0 || f == 4);
    if (avx2 && dh == WIDTH && q <= MAX_PERMUTED) return 4;
    if (fma) return 3;
    if (avx) return 2;
#else
    (void)dh;
    (void)q;
#endif
    return 1;
}

static size_t scan(SCAN_ARGS) {
    switch (choose(dh, q)) {
#ifdef SCAN_X86
    case 4: return scan_avx2(hi, dh, sq, n, p, q, o);
    case 3: return scan_fma(hi, dh, sq, n, p, q, o);
    case 2: return scan_avx(hi, dh, sq, n, p, q, o);
#endif
    default: return scan_portable(hi, dh, sq, n, p, q, o);
    }
}

/* The path a search of the gallery's vectors (128 values, one probe) takes, as
 * choose() numbers them (rescue doctor names it). */
int rescue_scan_path(void) { return choose(MAX_DIM, 1); }

/* Every value: out[k * ld + i] for i < n, k < q. */
void rescue_scan_dense(const uint16_t *hi, size_t dh, const float *sq, size_t n, const float *p,
                       int q, float *out, size_t ld) {
    sink_t o = {out, ld, NULL, NULL, NULL, NULL, 0, 0};
    scan(hi, dh, sq, n, p, q, &o);
}

/* Only values s <= limit[k]: (row, probe, s) appended in row order, at most cap of
 * them (cap >= q), a row's probes never split. Returns how many were stored; *next
 * is the first row not scanned (n when done: call again from there). */
int64_t rescue_scan_within(const uint16_t *hi, size_t dh, const float *sq, size_t n,
                           const float *p, int q, const float *limit, int64_t *rows,
                           int32_t *probes, float *vals, int64_t cap, size_t *next) {
    sink_t o = {NULL, 0, limit, rows, probes, vals, cap, 0};
    *next = scan(hi, dh, sq, n, p, q, &o);
    return o.count;
}

/* The library's interface version (rescue.matching.scan checks it). */
int rescue_scan_version(void) { return 8; }
