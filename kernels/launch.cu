// launch.cu: an empty kernel; back-to-back launches of it measure launch overhead (µs per launch).
extern "C" __global__ void empty_kernel() {}
