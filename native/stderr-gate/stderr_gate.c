// Points file descriptor 2 at /dev/null and back, for code that must keep a library's writes to fd 2 (made in C,
// out of node's reach) off the user's screen. Node has no dup/dup2; this is all it adds.
#include <fcntl.h>
#include <node_api.h>
#include <unistd.h>

#define STDERR 2

// mute() -> a duplicate of the original fd 2 to hand to restore(), or -1 when fd 2 was left as it was.
static napi_value Mute(napi_env env, napi_callback_info info) {
  (void)info;
  int saved = fcntl(STDERR, F_DUPFD_CLOEXEC, 3);
  int result = -1;
  if (saved >= 0) {
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0 && dup2(devnull, STDERR) == STDERR) {
      result = saved;
    } else {
      close(saved);
    }
    if (devnull >= 0) close(devnull);
  }
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

// restore(saved): fd 2 is the original again; `saved` is closed.
static napi_value Restore(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t saved = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &saved) != napi_ok || saved < 3) {
    napi_throw_type_error(env, NULL, "restore(saved) takes the descriptor mute() returned");
    return NULL;
  }
  int restored = dup2(saved, STDERR);
  close(saved);
  if (restored != STDERR) napi_throw_error(env, NULL, "could not point fd 2 back at the original stderr");
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"mute", NULL, Mute, NULL, NULL, NULL, napi_default, NULL},
      {"restore", NULL, Restore, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
