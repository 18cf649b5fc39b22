// gemm_check.cu: what GEMM verification reads from a stored product, computed on the device so
// that an 8192² C (up to 512 MiB) never has to cross PCIe:
// - row_times_*: z_i = Σ_j C[i][j]·r[j] in f64 (Freivalds' projection), one block per row;
// - gather_*: selected entries C[idx] converted exactly to f64.
// C is row-major m×n (the transposed column-major product cuBLAS writes when called as
// Cᵀ = Bᵀ·Aᵀ). f16/bf16 are read as raw 16-bit words and widened exactly with PTX/bit operations,
// so no CUDA header is needed. Assumes blockDim.x == CHECK_BLOCK.

typedef unsigned long long u64;

#define CHECK_BLOCK 256

__device__ __forceinline__ double load_f64(const double* c, u64 i) { return c[i]; }
__device__ __forceinline__ double load_f32(const float* c, u64 i) { return (double)c[i]; }
__device__ __forceinline__ double load_f16(const unsigned short* c, u64 i) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(c[i]));
    return (double)f;
}
__device__ __forceinline__ double load_bf16(const unsigned short* c, u64 i) {
    return (double)__uint_as_float(((unsigned)c[i]) << 16);
}

__device__ __forceinline__ double check_block_sum(double v) {
    __shared__ double warp_sums[CHECK_BLOCK / 32];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < CHECK_BLOCK / 32 ? warp_sums[threadIdx.x] : 0.0;
    if (threadIdx.x < 32) {
        for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    }
    __syncthreads();  // warp_sums is reused by the next row
    return v;
}

#define ROW_TIMES(NAME, T, LOAD)                                                              \
    extern "C" __global__ void NAME(const T* __restrict__ c, u64 m, u64 n,                     \
                                    const double* __restrict__ r, double* __restrict__ z) {   \
        for (u64 i = blockIdx.x; i < m; i += gridDim.x) {                                      \
            double sum = 0.0;                                                                  \
            for (u64 j = threadIdx.x; j < n; j += blockDim.x) sum += LOAD(c, i * n + j) * r[j]; \
            sum = check_block_sum(sum);                                                        \
            if (threadIdx.x == 0) z[i] = sum;                                                  \
        }                                                                                      \
    }

#define GATHER(NAME, T, LOAD)                                                                  \
    extern "C" __global__ void NAME(const T* __restrict__ c, u64 len, const u64* __restrict__ idx, \
                                    u64 count, double* __restrict__ out) {                     \
        for (u64 p = (u64)blockIdx.x * blockDim.x + threadIdx.x; p < count;                     \
             p += (u64)gridDim.x * blockDim.x) {                                               \
            u64 i = idx[p];                                                                    \
            out[p] = i < len ? LOAD(c, i) : __longlong_as_double(0x7FF8000000000000ll);        \
        }                                                                                      \
    }

ROW_TIMES(row_times_f64, double, load_f64)
ROW_TIMES(row_times_f32, float, load_f32)
ROW_TIMES(row_times_f16, unsigned short, load_f16)
ROW_TIMES(row_times_bf16, unsigned short, load_bf16)
GATHER(gather_f64, double, load_f64)
GATHER(gather_f32, float, load_f32)
GATHER(gather_f16, unsigned short, load_f16)
GATHER(gather_bf16, unsigned short, load_bf16)
