/* Classifies one image file in INT8 through the engine's C API, quantized from a stats file
 * (written earlier by `engine quantize --stats-out stats.json ...`). The image is decoded with
 * stb_image (Debian libstb-dev) and normalized as (pixel * scale - mean) / std per channel.
 *
 *   classify_c MODEL.onnx STATS.json IMAGE [scale mean std]
 */
#include <engine/engine_c.h>

#include <stdio.h>
#include <stdlib.h>

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

int main(int argc, char** argv) {
  if (argc != 4 && argc != 7) {
    fprintf(stderr, "usage: %s MODEL.onnx STATS.json IMAGE [scale mean std]\n", argv[0]);
    return 2;
  }
  const float scale = argc == 7 ? (float)atof(argv[4]) : 1.0f;
  const float mean = argc == 7 ? (float)atof(argv[5]) : 0.0f;
  const float std = argc == 7 ? (float)atof(argv[6]) : 1.0f;

  engine_options opt;
  engine_options_init(&opt);
  opt.precision = ENGINE_INT8;
  opt.stats_file = argv[2];
  opt.threads = 1;
  engine_model* model = NULL;
  if (engine_model_load(argv[1], &opt, &model) != ENGINE_OK) {
    fprintf(stderr, "error: %s\n", engine_last_error());
    return 1;
  }
  const char* in_name = NULL;
  const char* out_name = NULL;
  const int64_t* in_shape = NULL;
  size_t rank = 0;
  engine_model_input(model, 0, &in_name, NULL, &in_shape, &rank);
  engine_model_output(model, 0, &out_name, NULL, NULL, NULL);
  if (rank != 4) {
    fprintf(stderr, "error: expected an [N,C,H,W] input\n");
    engine_model_free(model);
    return 1;
  }
  const int channels = (int)in_shape[1];
  int w = 0, h = 0, got = 0;
  unsigned char* pixels = stbi_load(argv[3], &w, &h, &got, channels);
  if (!pixels) {
    fprintf(stderr, "error: %s: %s\n", argv[3], stbi_failure_reason());
    engine_model_free(model);
    return 1;
  }
  float* x = malloc(sizeof(float) * (size_t)channels * (size_t)h * (size_t)w);
  for (int c = 0; c < channels; ++c)
    for (int i = 0; i < h * w; ++i)
      x[(size_t)c * (size_t)(h * w) + (size_t)i] =
          ((float)pixels[(size_t)i * (size_t)channels + (size_t)c] * scale - mean) / std;
  stbi_image_free(pixels);

  const int64_t shape[4] = {1, channels, h, w};
  const engine_tensor input = {ENGINE_DTYPE_FLOAT32, shape, 4, x};
  engine_session* session = NULL;
  engine_tensor out;
  int rc = 0;
  if (engine_session_create(model, &session) != ENGINE_OK ||
      engine_session_run(session, 1, &in_name, &input) != ENGINE_OK ||
      engine_session_output(session, out_name, &out) != ENGINE_OK) {
    fprintf(stderr, "error: %s\n", engine_last_error());
    rc = 1;
  } else {
    const float* p = (const float*)out.data;
    int64_t n = 1, best = 0;
    for (size_t k = 0; k < out.rank; ++k) n *= out.shape[k];
    for (int64_t k = 1; k < n; ++k)
      if (p[k] > p[best]) best = k;
    printf("class %lld score %g\n", (long long)best, (double)p[best]);
  }
  engine_session_free(session);
  engine_model_free(model);
  free(x);
  return rc;
}
