// stream.cu: BabelStream's kernels on f64 arrays (see `src/bench/stream.rs` for the byte counts).
//
// Every kernel is grid-stride over 16-byte double2 vectors (one 128-bit load/store per element
// pair, the widest access a thread can issue), with the odd last element, if any, done by thread 0.
// cudaMalloc'd arrays are 256-byte aligned, so the double2 casts are aligned.
// Reductions (dot, max deviation) write one partial per block; the host adds the few partials,
// as BabelStream does. They assume blockDim.x == STREAM_BLOCK.

typedef unsigned long long u64;

#define STREAM_BLOCK 256

#define TID ((u64)blockIdx.x * blockDim.x + threadIdx.x)
#define STRIDE ((u64)gridDim.x * blockDim.x)

extern "C" __global__ void stream_fill(double* __restrict__ x, double value, u64 n) {
    double2 v = make_double2(value, value);
    double2* x2 = (double2*)x;
    for (u64 i = TID; i < n / 2; i += STRIDE) x2[i] = v;
    if ((n & 1) && TID == 0) x[n - 1] = value;
}

extern "C" __global__ void stream_copy(const double* __restrict__ a, double* __restrict__ c, u64 n) {
    const double2* a2 = (const double2*)a;
    double2* c2 = (double2*)c;
    for (u64 i = TID; i < n / 2; i += STRIDE) c2[i] = a2[i];
    if ((n & 1) && TID == 0) c[n - 1] = a[n - 1];
}

extern "C" __global__ void stream_scale(double* __restrict__ b, const double* __restrict__ c,
                                        double scalar, u64 n) {
    const double2* c2 = (const double2*)c;
    double2* b2 = (double2*)b;
    for (u64 i = TID; i < n / 2; i += STRIDE) {
        double2 v = c2[i];
        b2[i] = make_double2(scalar * v.x, scalar * v.y);
    }
    if ((n & 1) && TID == 0) b[n - 1] = scalar * c[n - 1];
}

extern "C" __global__ void stream_add(const double* __restrict__ a, const double* __restrict__ b,
                                      double* __restrict__ c, u64 n) {
    const double2* a2 = (const double2*)a;
    const double2* b2 = (const double2*)b;
    double2* c2 = (double2*)c;
    for (u64 i = TID; i < n / 2; i += STRIDE) {
        double2 x = a2[i];
        double2 y = b2[i];
        c2[i] = make_double2(x.x + y.x, x.y + y.y);
    }
    if ((n & 1) && TID == 0) c[n - 1] = a[n - 1] + b[n - 1];
}

extern "C" __global__ void stream_triad(double* __restrict__ a, const double* __restrict__ b,
                                        const double* __restrict__ c, double scalar, u64 n) {
    double2* a2 = (double2*)a;
    const double2* b2 = (const double2*)b;
    const double2* c2 = (const double2*)c;
    for (u64 i = TID; i < n / 2; i += STRIDE) {
        double2 x = b2[i];
        double2 y = c2[i];
        a2[i] = make_double2(x.x + scalar * y.x, x.y + scalar * y.y);
    }
    if ((n & 1) && TID == 0) a[n - 1] = b[n - 1] + scalar * c[n - 1];
}

// Sum over a block of STREAM_BLOCK threads; the result is valid in thread 0.
__device__ __forceinline__ double block_sum(double v) {
    __shared__ double warp_sums[STREAM_BLOCK / 32];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < STREAM_BLOCK / 32 ? warp_sums[threadIdx.x] : 0.0;
    if (threadIdx.x < 32) {
        for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    }
    return v;
}

__device__ __forceinline__ double block_max(double v) {
    __shared__ double warp_max[STREAM_BLOCK / 32];
    for (int offset = 16; offset > 0; offset /= 2) v = fmax(v, __shfl_down_sync(0xffffffffu, v, offset));
    if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < STREAM_BLOCK / 32 ? warp_max[threadIdx.x] : 0.0;
    if (threadIdx.x < 32) {
        for (int offset = 16; offset > 0; offset /= 2) v = fmax(v, __shfl_down_sync(0xffffffffu, v, offset));
    }
    return v;
}

extern "C" __global__ void stream_dot(const double* __restrict__ a, const double* __restrict__ b,
                                      double* __restrict__ partial, u64 n) {
    const double2* a2 = (const double2*)a;
    const double2* b2 = (const double2*)b;
    double sum = 0.0;
    for (u64 i = TID; i < n / 2; i += STRIDE) {
        double2 x = a2[i];
        double2 y = b2[i];
        sum += x.x * y.x + x.y * y.y;
    }
    if ((n & 1) && TID == 0) sum += a[n - 1] * b[n - 1];
    sum = block_sum(sum);
    if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

// Largest |x_i - expected| per block; a NaN element counts as infinitely far (fmax would drop it).
extern "C" __global__ void stream_max_dev(const double* __restrict__ x, double expected,
                                          double* __restrict__ partial, u64 n) {
    double worst = 0.0;
    for (u64 i = TID; i < n; i += STRIDE) {
        double d = fabs(x[i] - expected);
        worst = fmax(worst, d != d ? __longlong_as_double(0x7FF0000000000000ll) : d);
    }
    worst = block_max(worst);
    if (threadIdx.x == 0) partial[blockIdx.x] = worst;
}
