#include "frontend/image.h"

// The stb_image implementation is compiled into Debian's libstb (link -lstb); only declarations
// here. stbi_failure_reason() is thread-local in this version (2.27), so parallel decoding is safe.
#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace engine {

namespace {

bool starts_with(const unsigned char* b, size_t n, const char* magic, size_t m) {
  return n >= m && std::memcmp(b, magic, m) == 0;
}

// stb_image 2.27 reads the raw pixel data of binary PNM and uncompressed TGA files without
// checking that the file holds it, leaving the rest of its output buffer uninitialized. Those
// two formats have sizes that follow from the header, so truncated files are rejected here.
void check_raw_sizes(const unsigned char* b, size_t n, const std::string& name) {
  if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) {
    // Header as stb parses it: whitespace and '#' comments, width, height, maxval, then exactly
    // one whitespace byte before the pixels.
    size_t pos = 2;
    auto skip = [&] {
      while (pos < n) {
        if (std::isspace(b[pos]))
          ++pos;
        else if (b[pos] == '#')
          while (pos < n && b[pos] != '\n' && b[pos] != '\r') ++pos;
        else
          break;
      }
    };
    auto number = [&] {
      uint64_t v = 0;
      while (pos < n && b[pos] >= '0' && b[pos] <= '9' && v < (uint64_t(1) << 40))
        v = v * 10 + (b[pos++] - '0');
      return v;
    };
    skip();
    const uint64_t w = number();
    skip();
    const uint64_t h = number();
    skip();
    const uint64_t maxv = number();
    if (w > (1u << 24) || h > (1u << 24)) return;  // stb_image refuses these itself
    const uint64_t header = pos + 1;
    const uint64_t c = b[1] == '6' ? 3 : 1, bytes = maxv > 255 ? 2 : 1;
    const uint64_t need = w * h * c * bytes;
    if (header > n || n - header < need)
      fail(name, ": truncated PNM image: header declares ", w, "x", h, " (", c, " channel",
           c > 1 ? "s" : "", ", ", 8 * bytes, "-bit) = ", need,
           " bytes of pixels but the file has ", header > n ? 0 : n - header);
    return;
  }
  const bool other = starts_with(b, n, "\xff\xd8", 2) || starts_with(b, n, "\x89PNG", 4) ||
                     starts_with(b, n, "GIF8", 4) || starts_with(b, n, "BM", 2) ||
                     starts_with(b, n, "8BPS", 4) || starts_with(b, n, "\x53\x80\xf6\x34", 4);
  if (other || n < 18) return;
  // TGA: id length, colormap type, image type, ..., width, height (LE16 at 12, 14), bpp at 16.
  const int cmap = b[1], type = b[2], bpp = b[16];
  if (cmap != 0 || (type != 2 && type != 3) || bpp == 15 || (bpp == 16 && type == 2)) return;
  const uint64_t w = b[12] | (b[13] << 8), h = b[14] | (b[15] << 8);
  const uint64_t header = 18 + uint64_t(b[0]), need = w * h * uint64_t(bpp / 8);
  if (n < header || n - header < need)
    fail(name, ": truncated TGA image: header declares ", w, "x", h, " at ", bpp,
         " bits per pixel = ", need, " bytes of pixels but the file has ",
         n < header ? 0 : n - header);
}

}  // namespace

Tensor decode_image(const void* data, size_t size, const std::string& name,
                    const ImageLimits& limits) {
  if (size > size_t(INT_MAX))
    fail(name, ": image file of ", size, " bytes is too large for stb_image (2 GiB limit)");
  const auto* bytes = static_cast<const stbi_uc*>(data);
  if (starts_with(bytes, size, "#?", 2))
    fail(name, ": HDR (Radiance) images are not supported as model input");
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes, int(size), &w, &h, &comp))
    fail(name, ": not a valid PNG/JPEG/BMP/GIF/TGA/PSD/PNM image (stb: ", stbi_failure_reason(),
         ")");
  if (w <= 0 || h <= 0 || w > limits.max_width || h > limits.max_height)
    fail(name, ": image is ", w, "x", h, ", outside the allowed 1x1 to ", limits.max_width, "x",
         limits.max_height);
  check_raw_sizes(bytes, size, name);
  const int want = comp <= 2 ? 1 : 3;
  int w2 = 0, h2 = 0, comp2 = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes, int(size), &w2, &h2, &comp2, want), stbi_image_free);
  if (!pixels) fail(name, ": cannot decode image (stb: ", stbi_failure_reason(), ")");
  if (w2 != w || h2 != h)
    fail(name, ": image header says ", w, "x", h, " but decoding gave ", w2, "x", h2);
  Tensor t(DType::U8, {h, w, want});
  std::memcpy(t.raw(), pixels.get(), t.nbytes());
  return t;
}

Tensor load_image(const std::string& path, const ImageLimits& limits) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ": cannot read image: ", ec.message());
  if (size > uint64_t(limits.max_file_bytes))
    fail(path, ": image file is ", size, " bytes, over the ", limits.max_file_bytes, "-byte limit");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) fail(path, ": cannot open image: ", std::strerror(errno));
  std::vector<unsigned char> buf(static_cast<size_t>(size));
  if (size && std::fread(buf.data(), 1, buf.size(), f.get()) != buf.size())
    fail(path, ": could not read ", size,
         " bytes: ", std::ferror(f.get()) ? std::strerror(errno) : "file shrank while reading");
  return decode_image(buf.data(), buf.size(), path, limits);
}

bool has_image_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  static const char* const kExts[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif",
                                      ".tga", ".psd",  ".pgm", ".ppm", ".pnm"};
  for (const char* e : kExts)
    if (ext == e) return true;
  return false;
}

}  // namespace engine
