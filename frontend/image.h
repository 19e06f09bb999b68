// Image decoding with stb_image (JPEG baseline/progressive, PNG 8/16-bit, BMP, GIF first frame,
// TGA, PSD composite, binary PNM) into HWC uint8 tensors. HDR files are refused. A JPEG cut short
// decodes with the missing part filled in (stb_image's behaviour); truncated PNG, PNM and TGA
// files are errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace engine {

struct ImageLimits {
  int max_width = 16384;
  int max_height = 16384;
  int64_t max_file_bytes = int64_t(512) << 20;
};

// Decodes an image file to uint8 [H,W,C]: C = 1 for gray and gray+alpha sources, C = 3 for RGB
// and RGBA sources (alpha dropped, not composited, as PIL's convert("RGB") does). 16-bit images
// are converted to 8 bits by stb_image. The dimensions are checked against `limits`
// before the pixels are decoded.
Tensor load_image(const std::string& path, const ImageLimits& limits = {});

// The same from a memory buffer; `name` is used in error messages.
Tensor decode_image(const void* data, size_t size, const std::string& name,
                    const ImageLimits& limits = {});

// True for file names with an extension decoded here (case-insensitive): .jpg .jpeg .png .bmp
// .gif .tga .psd .pgm .ppm .pnm.
bool has_image_extension(const std::string& path);

}  // namespace engine
