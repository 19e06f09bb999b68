/* The engine's C API: load an ONNX model once, run it from many threads, FP32 or INT8.
 *
 * Lifecycle and ownership:
 *   engine_model_load*()  -> engine_model*   (compiled once; read-only afterwards; free with
 *                                             engine_model_free when no session uses it)
 *   engine_session_create(model) -> engine_session*   (one per thread at a time; keeps its
 *                                             outputs; free with engine_session_free)
 *   engine_session_run(session, inputs) then engine_session_output(session, name, &view):
 *                                             the view points into the session and stays valid
 *                                             until the next run or free of that session.
 * Threading: a model may be shared by any number of sessions running at the same time on
 * different threads; a single session must not be used by two threads at once. Every run uses
 * the session's thread count (engine_options.threads; 0 = all cores), so an application with its
 * own thread pool can run sessions with 1 thread each without oversubscription.
 * Errors: every function returns an engine_status; on failure engine_last_error() gives the
 * message for the calling thread (valid until its next failing call). No C++ exception crosses
 * this interface.
 */
#ifndef ENGINE_ENGINE_C_H
#define ENGINE_ENGINE_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ENGINE_C_API __attribute__((visibility("default")))
#else
#define ENGINE_C_API
#endif

#define ENGINE_VERSION_MAJOR 0
#define ENGINE_VERSION_MINOR 1

typedef enum engine_status {
  ENGINE_OK = 0,
  ENGINE_ERROR_INVALID_ARGUMENT = 1, /* null pointer, unknown name, wrong shape or dtype */
  ENGINE_ERROR_LOAD = 2,             /* unreadable, malformed or unsupported model / files */
  ENGINE_ERROR_RUN = 3,              /* a kernel failed while running */
  ENGINE_ERROR_OUT_OF_MEMORY = 4
} engine_status;

/* Element types, numbered as ONNX TensorProto.DataType. */
typedef enum engine_dtype {
  ENGINE_DTYPE_UNDEFINED = 0,
  ENGINE_DTYPE_FLOAT32 = 1,
  ENGINE_DTYPE_UINT8 = 2,
  ENGINE_DTYPE_INT8 = 3,
  ENGINE_DTYPE_INT32 = 6,
  ENGINE_DTYPE_INT64 = 7,
  ENGINE_DTYPE_BOOL = 9
} engine_dtype;

typedef enum engine_precision { ENGINE_FP32 = 0, ENGINE_INT8 = 1 } engine_precision;

typedef struct engine_options {
  engine_precision precision; /* ENGINE_INT8 needs stats_file (from `engine quantize
                                 --stats-out`) unless the model is already quantized */
  int threads;                /* per run; 0 = all cores */
  const char* stats_file;     /* calibration statistics (JSON) for ENGINE_INT8, or NULL */
  const char* config_file;    /* per-layer quantization config (JSON / YAML), or NULL */
  int per_tensor;             /* 1: per-tensor weight scales (default per channel) */
  const char* backend;        /* "onednn" (default, NULL) or "reference" */
} engine_options;

typedef struct engine_tensor {
  engine_dtype dtype;
  const int64_t* shape;
  size_t rank;
  const void* data; /* dense, row-major */
} engine_tensor;

typedef struct engine_model engine_model;
typedef struct engine_session engine_session;

ENGINE_C_API const char* engine_version(void); /* "0.1" */
ENGINE_C_API const char* engine_last_error(void);
ENGINE_C_API void engine_options_init(engine_options* options);

ENGINE_C_API engine_status engine_model_load(const char* path, const engine_options* options,
                                             engine_model** model);
ENGINE_C_API engine_status engine_model_load_memory(const void* data, size_t size,
                                                    const engine_options* options,
                                                    engine_model** model);
ENGINE_C_API void engine_model_free(engine_model* model);

/* Inputs / outputs in model order. name and shape point into the model (valid while it
 * lives); a dynamic dimension is -1. */
ENGINE_C_API size_t engine_model_input_count(const engine_model* model);
ENGINE_C_API size_t engine_model_output_count(const engine_model* model);
ENGINE_C_API engine_status engine_model_input(const engine_model* model, size_t index,
                                              const char** name, engine_dtype* dtype,
                                              const int64_t** shape, size_t* rank);
ENGINE_C_API engine_status engine_model_output(const engine_model* model, size_t index,
                                               const char** name, engine_dtype* dtype,
                                               const int64_t** shape, size_t* rank);

ENGINE_C_API engine_status engine_session_create(const engine_model* model,
                                                 engine_session** session);
ENGINE_C_API void engine_session_free(engine_session* session);
/* Runs with every model input given by name (the data is read, not kept). */
ENGINE_C_API engine_status engine_session_run(engine_session* session, size_t count,
                                              const char* const* names,
                                              const engine_tensor* inputs);
/* A view of an output of the last run, by name. */
ENGINE_C_API engine_status engine_session_output(const engine_session* session, const char* name,
                                                 engine_tensor* output);

#ifdef __cplusplus
}
#endif

#endif /* ENGINE_ENGINE_C_H */
