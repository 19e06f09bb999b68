// libengine.so is the static library linked whole (CMakeLists.txt: engine_shared) with only the C
// API exported (api/engine_c.map); this file only gives the target a source of its own.
namespace engine {
extern const int kSharedLibrary = 1;
}  // namespace engine
