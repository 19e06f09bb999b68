// Image preprocessing: HWC uint8 image -> CHW float32 model input.
//
// Steps, in this order (each optional):
//   1. channels: an RGB source is converted to gray first when channels == 1
//      (L = (19595 R + 38470 G + 7471 B + 32768) >> 16, PIL's convert("L"));
//   2. resize: the shorter side becomes `resize`, the longer one int(resize * long / short)
//      (torchvision's Resize(int) rule), bilinear exactly as PIL's Image.resize(BILINEAR), the
//      resampler behind torchvision's Resize on PIL images: plain bilinear with clamped edges
//      when enlarging, antialiased (the triangle widened by the shrink factor) when shrinking.
//      Own code: stb_image_resize 0.97 aborts on an assertion for some sizes (nothings/stb#1449);
//   3. crop: centre crop crop x crop, offsets round((n - crop) / 2) half to even as torchvision's
//      CenterCrop; an image smaller than the crop is zero-padded around it first, like torchvision;
//   4. pad: `pad` pixels of raw value 0 on every side (the Fashion-MNIST recipe pads 28 -> 32
//      before scaling, so padding pixels become (0 - mean) / std);
//   5. per output channel c (a gray source is replicated when channels == 3; with bgr the
//      channel order is B,G,R and mean/std apply in that order):
//        out[c,y,x] = ((float(p) * scale) - mean[c]) / std[c]      in float32, in this order,
//      where "* scale" is "/ scale_divisor" when scale_divisor > 0 (parse_scale("1/255") sets
//      it), so x/255 matches PyTorch's ToTensor bit for bit (x * (1/255.f) differs by an ulp for
//      half of the 256 pixel values).
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace engine {

struct PreprocessOptions {
  int resize = 0;    // shorter side in pixels; 0 = keep size
  int crop = 0;      // centre crop to crop x crop; 0 = none
  int pad = 0;       // zero pixels added on every side, on raw pixels before scaling
  int channels = 0;  // 0 = as the source (1 or 3), 1 = gray, 3 = RGB (gray replicated)
  bool bgr = false;  // emit B,G,R instead of R,G,B (3 channels only; no-op for gray)
  float scale = 1.0f;
  float scale_divisor = 0.0f;  // > 0: divide by this instead of multiplying by `scale`
  std::vector<float> mean;     // empty = 0, 1 value = all channels, else one per output channel
  std::vector<float> std;      // empty = 1, likewise
};

// Checks the options themselves (negative sizes, channels not 0/1/3, zero or non-finite std...).
void validate_preprocess(const PreprocessOptions& opts);

// [C,H,W] that preprocess_image produces for an image of shape [H,W] or [H,W,C].
Dims preprocessed_shape(const Dims& image_shape, const PreprocessOptions& opts);

// uint8 [H,W] (gray) or [H,W,C] with C in {1,3} -> float32 [C',H',W'] as described above.
Tensor preprocess_image(const Tensor& image, const PreprocessOptions& opts);

// The individual steps, on uint8 [H,W,C] images (C in {1,3}; [H,W] is accepted as C = 1).
Tensor convert_channels(const Tensor& image, int channels);  // channels 1 or 3
Tensor resize_shorter_side(const Tensor& image, int size);
Tensor resize_image(const Tensor& image, int64_t height, int64_t width);  // PIL bilinear
Tensor center_crop(const Tensor& image, int size);
Tensor pad_image(const Tensor& image, int pad);

// "1/255" (sets scale_divisor = 255 and scale = 1/255), "0.0039" or "2/3" (sets scale only).
void parse_scale(const std::string& text, PreprocessOptions& opts);
// "0.485,0.456,0.406" -> {0.485f, 0.456f, 0.406f}; `what` names the option in errors ("--mean").
std::vector<float> parse_float_list(const std::string& text, const std::string& what);
// One line for logs, e.g. "resize 256, crop 224, channels 3 (RGB), x/255, mean [..], std [..]".
std::string describe(const PreprocessOptions& opts);

}  // namespace engine
