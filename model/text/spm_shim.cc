#include "model/text/spm_shim.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace attnserve {

struct SpmModel::Api {
  void* (*load)(const char*, char*, size_t);
  void (*free)(void*);
  size_t (*encode)(const void*, const char*, size_t, int32_t*, uint32_t*,
                   uint32_t*, size_t);
  int (*size)(const void*);
  int (*unk_id)(const void*);
  const char* (*piece)(const void*, int, size_t*);
};

namespace {

constexpr char kPlugin[] = "libattnserve_spm.so";

// ASan and TSan abort a dlopen with RTLD_DEEPBIND (google/sanitizers#611: the
// library would call libc's malloc and friends past their interceptors). In a
// sanitizer build the plugin is loaded without it: right in a process without
// libprotobuf (the tokenizer tests), while ServerSentencePieceTest, which
// needs deep binding next to libprotobuf, skips itself there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kDeepBind = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int kDeepBind = 0;
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
#endif
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
#endif

std::string ExecutableDir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, n);
  return path.substr(0, path.find_last_of('/'));
}

// The plugin's functions, or null with `*error` set. Loaded once.
const SpmModel::Api* LoadApi(std::string* error) {
  static std::once_flag once;
  static SpmModel::Api* api = nullptr;
  static std::string load_error;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("ATTNSERVE_SPM_PLUGIN")) {
      candidates.push_back(env);
    }
    candidates.push_back(ExecutableDir() + "/" + kPlugin);
#ifdef ATTNSERVE_SPM_PLUGIN_DIR
    candidates.push_back(std::string(ATTNSERVE_SPM_PLUGIN_DIR) + "/" + kPlugin);
#endif
    void* handle = nullptr;
    std::string tried;
    for (const std::string& c : candidates) {
      handle = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | kDeepBind);
      if (handle != nullptr) break;
      tried += (tried.empty() ? "" : "; ") + std::string(::dlerror());
    }
    if (handle == nullptr) {
      load_error = "cannot load the SentencePiece plugin " +
                   std::string(kPlugin) + " (" + tried +
                   "): set ATTNSERVE_SPM_PLUGIN to its path";
      return;
    }
    auto* a = new SpmModel::Api();
    bool ok = true;
    auto sym = [&](const char* name) {
      void* p = ::dlsym(handle, name);
      ok = ok && p != nullptr;
      return p;
    };
    a->load = reinterpret_cast<decltype(a->load)>(sym("attnserve_spm_load"));
    a->free = reinterpret_cast<decltype(a->free)>(sym("attnserve_spm_free"));
    a->encode =
        reinterpret_cast<decltype(a->encode)>(sym("attnserve_spm_encode"));
    a->size = reinterpret_cast<decltype(a->size)>(sym("attnserve_spm_size"));
    a->unk_id =
        reinterpret_cast<decltype(a->unk_id)>(sym("attnserve_spm_unk_id"));
    a->piece =
        reinterpret_cast<decltype(a->piece)>(sym("attnserve_spm_piece"));
    if (!ok) {
      load_error = std::string(kPlugin) + " lacks the attnserve_spm_* functions";
      delete a;
      return;
    }
    api = a;
  });
  if (api == nullptr) *error = load_error;
  return api;
}

}  // namespace

std::unique_ptr<SpmModel> SpmModel::Load(const std::string& path,
                                         std::string* error) {
  const Api* api = LoadApi(error);
  if (api == nullptr) return nullptr;
  char buf[1024] = {0};
  void* model = api->load(path.c_str(), buf, sizeof(buf));
  if (model == nullptr) {
    *error = buf;
    return nullptr;
  }
  return std::unique_ptr<SpmModel>(new SpmModel(api, model));
}

SpmModel::~SpmModel() { api_->free(model_); }

bool SpmModel::Encode(std::string_view text, std::vector<SpmPiece>* out,
                      std::string* /*error*/) const {
  // Pieces never outnumber bytes (+1 for an empty text's nothing).
  const size_t capacity = text.size() + 1;
  std::vector<int32_t> ids(capacity);
  std::vector<uint32_t> begins(capacity), ends(capacity);
  size_t n = api_->encode(model_, text.data(), text.size(), ids.data(),
                          begins.data(), ends.data(), capacity);
  if (n > capacity) {  // not expected; asked again with room
    ids.resize(n);
    begins.resize(n);
    ends.resize(n);
    n = api_->encode(model_, text.data(), text.size(), ids.data(),
                     begins.data(), ends.data(), n);
  }
  out->clear();
  out->reserve(n);
  for (size_t i = 0; i < n; ++i) out->push_back({ids[i], begins[i], ends[i]});
  return true;
}

int SpmModel::size() const { return api_->size(model_); }

std::string SpmModel::Piece(int id) const {
  size_t size = 0;
  const char* p = api_->piece(model_, id, &size);
  return std::string(p, size);
}

int SpmModel::unk_id() const { return api_->unk_id(model_); }

}  // namespace attnserve
