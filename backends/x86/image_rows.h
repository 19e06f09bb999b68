// The thread split of the row-by-row float kernels (NhwcMBConv, NhwcStem): each job computes a
// range of output rows of one image with its own scratch rows.
#pragma once

#include <algorithm>
#include <cstdint>

namespace engine::x86 {

// Calls job(n, y0, y1) for output rows [y0, y1) of image n, for every image, over `threads`
// OpenMP threads: one job per image, or, when there are fewer images than threads, each image
// cut into equal row ranges (the ranges recompute the input rows they share).
template <class Job>
void for_image_rows(int64_t images, int64_t rows, int threads, const Job& job) {
  const int T = std::max(1, threads);
  if (images <= 0 || rows <= 0) return;
  const int64_t parts = images >= T ? 1 : std::min<int64_t>((T + images - 1) / images, rows);
  const int64_t jobs = images * parts;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1 && jobs > 1)
  for (int64_t j = 0; j < jobs; ++j) {
    const int64_t n = j / parts, p = j % parts;
    job(n, p * rows / parts, (p + 1) * rows / parts);
  }
}

}  // namespace engine::x86
