/* WaveNet's sample-by-sample generation loop in C (studio/vocoders/native.py compiles and loads it).

   The same computation as WaveNet.generate's Python loop, which stays the reference: per sample,
   every layer's gate input is its interpolated conditioning plus one product per tap with its
   ring buffer of past inputs, the gated units feed the residual (the next layer's ring) and the
   skip sum, then the head, the softmax and a draw (or, with a teacher, the logits). In Python each
   of the ~100 small operations a sample costs a few microseconds of dispatch; here they cost
   only their arithmetic, and the folds of a line are split between threads (each runs the whole
   loop for its own rows, so no thread waits on another).

   All arrays are float32, C-contiguous, in the layouts the comments give (B = batch rows,
   F = mel frames, L = layers, G = gate channels, H = G / 2, R = residual, S = skip channels,
   K1 = head hidden channels, C = classes, P = LPC order). Weights arrive already transposed to
   (in, out) and scaled as the Python loop uses them. */

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int B, T, hop, L, k, R, G, S, K1, C, P;
    const int *dil;        /* (L) */
    const float *start;    /* (F, L, B, G) gate input's conditioning at each frame */
    const float *delta;    /* (F, L, B, G) its change to the next frame */
    const float *taps;     /* (L, k, R, G) tap j of layer l multiplies the input (k - 1 - j) * d samples back */
    const float *w_res;    /* (L, H, R) */
    const float *w_skip;   /* (L * H, S) */
    const float *b_skip;   /* (S) */
    const float *h1, *b1;  /* (S, K1), (K1) */
    const float *h2, *b2;  /* (K1, C), (C) */
    const float *table;    /* (C, R) embedding of the previous sample's class */
    const float *t_res, *t_pred; /* (C, R) LPC: embeddings of the previous residual and this prediction */
    const float *levels;   /* (C) LPC: each class's value */
    const float *edges;    /* (C - 1) LPC: where the class changes */
    const float *coef;     /* (F, B, P) LPC: each frame's predictor, oldest lag first */
    const int *near;       /* (T + 1) LPC: the frame whose predictor a sample uses */
    const float *draws;    /* (T, B) uniform draws, or NULL with a teacher */
    const float *teacher;  /* (T, B) true previous samples (LPC: floats, else classes), or NULL */
    float floor_p, res_scale;
    float *out;            /* (T, B) samples (classes as floats without LPC), or (T, B, C) logits */
} Job;

typedef struct {
    const Job *job;
    int b0, b1;
    int status;
} Slice;

/* exp(x) to about 2e-7 relative error in a form the compiler vectorises: 2^i * 2^f with
   f in [-0.5, 0.5] and 2^f from Cephes' exp2f polynomial. */
static inline float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float t = x * 1.44269504088896341f;
    float fi = floorf(t + 0.5f);
    float f = t - fi;
    float p = 1.535336188319500e-4f;
    p = p * f + 1.339887440266574e-3f;
    p = p * f + 9.618437357674640e-3f;
    p = p * f + 5.550332471162809e-2f;
    p = p * f + 2.402264791363012e-1f;
    p = p * f + 6.931472028550421e-1f;
    p = p * f + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)fi + 127) << 23;
    return p * scale.f;
}

/* y (n, N, row stride ldy) += x (n, K, row stride ldx) @ w (K, N).

   Blocked for registers: 4 rows by 64 columns of y are held in 16 vector accumulators while
   the K products stream past, so each row of w is loaded once per 4 rows of x. GCC's vector
   extensions keep this portable (a 16-float vector is two registers on AVX2, one on AVX-512). */
#define VW 16
typedef float vf __attribute__((vector_size(VW * sizeof(float)), aligned(sizeof(float))));
#define NB (4 * VW)

static inline __attribute__((always_inline)) void tile(const float *restrict x, int ldx, const int rb, int K,
                                                       const float *restrict w, int N, float *restrict y,
                                                       int ldy) {
    vf acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < rb; r++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) acc[r][c] = *(const vf *)(y + (size_t)r * ldy + c * VW);
    for (int i = 0; i < K; i++) {
        const float *wi = w + (size_t)i * N;
        const vf w0 = *(const vf *)wi, w1 = *(const vf *)(wi + VW), w2 = *(const vf *)(wi + 2 * VW),
                 w3 = *(const vf *)(wi + 3 * VW);
#pragma GCC unroll 4
        for (int r = 0; r < rb; r++) {
            const float xv = x[(size_t)r * ldx + i];
            acc[r][0] += xv * w0;
            acc[r][1] += xv * w1;
            acc[r][2] += xv * w2;
            acc[r][3] += xv * w3;
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < rb; r++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) *(vf *)(y + (size_t)r * ldy + c * VW) = acc[r][c];
}

static void gemm_acc(const float *restrict x, int ldx, int n, int K, const float *restrict w, int N,
                     float *restrict y, int ldy) {
    const int nv = N - N % NB;  /* columns the blocked tiles cover */
    for (int o = 0; o < nv; o += NB) {
        int b = 0;
        for (; b + 4 <= n; b += 4) tile(x + (size_t)b * ldx, ldx, 4, K, w + o, N, y + (size_t)b * ldy + o, ldy);
        switch (n - b) {
            case 3: tile(x + (size_t)b * ldx, ldx, 3, K, w + o, N, y + (size_t)b * ldy + o, ldy); break;
            case 2: tile(x + (size_t)b * ldx, ldx, 2, K, w + o, N, y + (size_t)b * ldy + o, ldy); break;
            case 1: tile(x + (size_t)b * ldx, ldx, 1, K, w + o, N, y + (size_t)b * ldy + o, ldy); break;
            default: break;
        }
    }
    if (nv == N) return;
    for (int b = 0; b < n; b++) {  /* the columns left over (small models only) */
        const float *xb = x + (size_t)b * ldx;
        float *restrict yb = y + (size_t)b * ldy;
        for (int i = 0; i < K; i++) {
            const float xi = xb[i];
            const float *restrict wi = w + (size_t)i * N;
            for (int o = nv; o < N; o++) yb[o] += xi * wi[o];
        }
    }
}

/* The number of edges <= v (torch.bucketize(v, edges, right=True)). */
static inline int bucket(const float *edges, int n, float v) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (edges[mid] <= v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static int run_slice(const Job *J, int b0, int b1) {
    const int B = J->B, T = J->T, hop = J->hop, L = J->L, k = J->k, R = J->R, G = J->G, S = J->S;
    const int K1 = J->K1, C = J->C, P = J->P, H = G / 2, n = b1 - b0;
    int *size = malloc(sizeof(int) * L);
    size_t *ring_at = malloc(sizeof(size_t) * (L + 1));
    if (!size || !ring_at) { free(size); free(ring_at); return 1; }
    ring_at[0] = 0;
    for (int l = 0; l < L; l++) {
        size[l] = (k - 1) * J->dil[l] + 1;
        ring_at[l + 1] = ring_at[l] + (size_t)size[l] * n * R;
    }
    /* one allocation for the workspace: rings, gate inputs, gated units, head, sampling, LPC history */
    size_t total = ring_at[L] + (size_t)L * n * G + (size_t)n * L * H + (size_t)n * S + (size_t)n * K1
                   + 2 * (size_t)n * C + (size_t)(T + P) * n + n;
    float *ws = calloc(total, sizeof(float));
    int *cls = malloc(sizeof(int) * n);
    if (!ws || !cls) { free(size); free(ring_at); free(ws); free(cls); return 1; }
    float *ring = ws, *hb = ring + ring_at[L], *z = hb + (size_t)L * n * G, *skips = z + (size_t)n * L * H;
    float *hidden = skips + (size_t)n * S, *logits = hidden + (size_t)n * K1, *cdf = logits + (size_t)n * C;
    float *hist = cdf + (size_t)n * C, *pred = hist + (size_t)(T + P) * n; /* hist[(P + t) * n + b] is sample t */
#define RING(l, slot) (ring + ring_at[l] + (size_t)(slot) * n * R)

    /* the first input: the middle class (silence); for LPC also a zero residual and prediction */
    for (int b = 0; b < n; b++) {
        float *x = RING(0, 0) + (size_t)b * R;
        for (int r = 0; r < R; r++) {
            x[r] = J->table[(size_t)(C / 2) * R + r];
            if (P) x[r] += J->t_res[(size_t)(C / 2) * R + r] + J->t_pred[(size_t)(C / 2) * R + r];
        }
    }
    for (int t = 0; t < T; t++) {
        const int f = t / hop;
        const float frac = (float)(t % hop) / (float)hop;
        for (int l = 0; l < L; l++) {
            for (int b = 0; b < n; b++) {
                const size_t src = (((size_t)f * L + l) * B + b0 + b) * G;
                const float *a = J->start + src, *d = J->delta + src;
                float *h = hb + ((size_t)l * n + b) * G;
                for (int g = 0; g < G; g++) h[g] = a[g] + frac * d[g];
            }
        }
        for (int l = 0; l < L; l++) {
            const int dl = J->dil[l], nl = size[l];
            float *h = hb + (size_t)l * n * G;
            for (int j = k - 1; j >= 0; j--) {
                const int back = (k - 1 - j) * dl;
                const float *x = RING(l, ((t - back) % nl + nl) % nl);
                gemm_acc(x, R, n, R, J->taps + ((size_t)l * k + j) * R * G, G, h, G);
            }
            for (int b = 0; b < n; b++) {
                float *hr = h + (size_t)b * G, *zr = z + (size_t)b * L * H + (size_t)l * H;
                for (int g = 0; g < G; g++) hr[g] = 1.0f / (1.0f + fast_exp(-hr[g]));
                for (int i = 0; i < H; i++) zr[i] = hr[H + i] - 2.0f * hr[i] * hr[H + i]; /* tanh(a) sigmoid(b) */
            }
            if (l + 1 < L) {
                const float *x = RING(l, t % nl);
                float *nx = RING(l + 1, t % size[l + 1]);
                memcpy(nx, x, sizeof(float) * (size_t)n * R);
                gemm_acc(z + (size_t)l * H, L * H, n, H, J->w_res + (size_t)l * H * R, R, nx, R);
                for (int i = 0; i < n * R; i++) nx[i] *= J->res_scale;
            }
        }
        for (int b = 0; b < n; b++) memcpy(skips + (size_t)b * S, J->b_skip, sizeof(float) * S);
        gemm_acc(z, L * H, n, L * H, J->w_skip, S, skips, S);
        for (int i = 0; i < n * S; i++) skips[i] = skips[i] > 0.0f ? skips[i] : 0.0f;
        for (int b = 0; b < n; b++) memcpy(hidden + (size_t)b * K1, J->b1, sizeof(float) * K1);
        gemm_acc(skips, S, n, S, J->h1, K1, hidden, K1);
        for (int i = 0; i < n * K1; i++) hidden[i] = hidden[i] > 0.0f ? hidden[i] : 0.0f;
        float *lg = J->teacher ? J->out + (size_t)t * B * C + (size_t)b0 * C : logits;
        for (int b = 0; b < n; b++) memcpy(lg + (size_t)b * C, J->b2, sizeof(float) * C);
        gemm_acc(hidden, K1, n, K1, J->h2, C, lg, C);

        for (int b = 0; b < n; b++) {
            float prev;
            if (J->teacher) {
                prev = J->teacher[(size_t)t * B + b0 + b];
            } else {
                /* invert the softmax's CDF at the draw, after lowering every probability by floor_p */
                const float *lr = logits + (size_t)b * C;
                float *c = cdf + (size_t)b * C, m = lr[0], sum = 0.0f;
                for (int i = 1; i < C; i++) m = lr[i] > m ? lr[i] : m;
                for (int i = 0; i < C; i++) c[i] = fast_exp(lr[i] - m);
                for (int i = 0; i < C; i++) sum += c[i];
                const float inv = 1.0f / sum;
                float acc = 0.0f;
                for (int i = 0; i < C; i++) {
                    float p = c[i] * inv - J->floor_p;
                    acc += p > 0.0f ? p : 0.0f;
                    c[i] = acc;
                }
                const float u = J->draws[(size_t)t * B + b0 + b] * (J->floor_p > 0.0f ? acc : 1.0f);
                int lo = 0, hi = C;  /* the first i with c[i] >= u */
                while (lo < hi) {
                    int mid = (lo + hi) >> 1;
                    if (c[mid] < u) lo = mid + 1; else hi = mid;
                }
                cls[b] = lo < C ? lo : C - 1;
                prev = (float)cls[b];
            }
            float *nx = RING(0, (t + 1) % size[0]) + (size_t)b * R;
            if (!P) {
                const int q = (int)prev;
                if (!J->teacher) J->out[(size_t)t * B + b0 + b] = prev;
                memcpy(nx, J->table + (size_t)q * R, sizeof(float) * R);
                continue;
            }
            float x;
            int e;
            if (J->teacher) {
                x = prev;
                e = bucket(J->edges, C - 1, x - pred[b]);
            } else {
                e = cls[b];
                x = pred[b] + J->levels[e];
                x = x < -1.0f ? -1.0f : (x > 1.0f ? 1.0f : x);
                J->out[(size_t)t * B + b0 + b] = x;
            }
            hist[(size_t)(P + t) * n + b] = x;
            const int s = bucket(J->edges, C - 1, x);
            const float *cf = J->coef + ((size_t)J->near[t + 1] * B + b0 + b) * P;
            float pr = 0.0f;
            for (int i = 0; i < P; i++) pr += hist[(size_t)(t + 1 + i) * n + b] * cf[i];
            pred[b] = pr;
            const int pc = bucket(J->edges, C - 1, pr);
            const float *es = J->table + (size_t)s * R, *er = J->t_res + (size_t)e * R;
            const float *ep = J->t_pred + (size_t)pc * R;
            for (int r = 0; r < R; r++) nx[r] = es[r] + er[r] + ep[r];
        }
    }
#undef RING
    free(size);
    free(ring_at);
    free(ws);
    free(cls);
    return 0;
}

static void *slice_main(void *arg) {
    Slice *s = arg;
    s->status = run_slice(s->job, s->b0, s->b1);
    return NULL;
}

/* Returns 0 on success, 1 if a slice could not allocate its buffers (a thread that cannot be
   started runs its slice on the calling thread instead). */
int wavenet_generate(const Job *job, int threads) {
    if (threads > job->B) threads = job->B;
    if (threads < 1) threads = 1;
    Slice slices[64];
    pthread_t ids[64];
    if (threads > 64) threads = 64;
    int status = 0, started[64] = {0};
    for (int i = 0; i < threads; i++) {
        slices[i].job = job;
        slices[i].b0 = (int)((long)job->B * i / threads);
        slices[i].b1 = (int)((long)job->B * (i + 1) / threads);
        slices[i].status = 0;
    }
    for (int i = 1; i < threads; i++)
        started[i] = pthread_create(&ids[i], NULL, slice_main, &slices[i]) == 0;
    slice_main(&slices[0]);
    for (int i = 1; i < threads; i++) {
        if (started[i]) pthread_join(ids[i], NULL);
        else slice_main(&slices[i]);  /* no thread: run it here */
        status |= slices[i].status;
    }
    return status | slices[0].status;
}
