/*
 * decodeScaled(jpeg, size, maxPixels, maxScans) -> Promise<Buffer | string>
 *
 * Decodes a JPEG straight to a size x size RGB image (squashed, not cropped) using libjpeg-turbo's DCT-domain
 * scaling: the photo is decoded at the smallest M/8 of its size (M = 1..16) whose sides both reach `size`, which
 * skips most of the IDCT and colour-conversion work of a full decode when shrinking and enlarges inside the IDCT
 * (9/8..16/8) when the photo is smaller than `size`, then reduced to size x size with a triangle filter as wide as
 * the remaining scale (Pillow's BILINEAR, libvips's `linear`).
 *
 * It only takes what it can decode exactly as the sharp path would display it: 8-bit YCbCr or greyscale, no ICC
 * profile, no EXIF orientation but 1, no enlargement beyond 2x (16/8), at most `maxPixels`, and no libjpeg warning but extraneous
 * bytes between markers. Anything else resolves to a string naming the reason, and the caller decodes with sharp,
 * which then reports the error (corrupt, truncated, too many pixels) exactly as it always has.
 *
 * findWarning(jpeg, maxScans) -> Promise<string | null>
 *
 * Decodes the whole stream at 1/8 scale and names the first libjpeg warning or error, or resolves null when there
 * is none: a stream whose entropy data is corrupt or cut short decodes
 * "successfully" with grey blocks, and only the warnings tell.
 *
 * Both stop a progressive stream at its (maxScans + 1)th scan: each scan walks every block of the image again, so
 * a few hundred KB of valid scans could otherwise cost minutes of CPU. The work runs on libuv's thread pool.
 */
#include <node_api.h>
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DECLINE_REASON_LENGTH (JMSG_LENGTH_MAX + 32)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  const uint8_t *input;
  size_t input_length;
  uint32_t size;
  double max_pixels;
  uint32_t max_scans;
  /* findWarning instead of decodeScaled. */
  int find_warning;
  uint8_t *pixels;
  char declined[DECLINE_REASON_LENGTH];
} decode_job;

typedef struct {
  struct jpeg_error_mgr base;
  jmp_buf escape;
  char *declined;
  /* Every warning counts, extraneous bytes too. */
  int strict;
} error_manager;

typedef struct {
  struct jpeg_progress_mgr base;
  uint32_t max_scans;
  char *declined;
  jmp_buf *escape;
} scan_limit;

/* libjpeg calls this between chunks of input while it absorbs a multi-scan stream, so a stream of too many scans is
 * stopped after reading one more scan's header, not after decoding them all. */
static void on_progress(j_common_ptr cinfo) {
  scan_limit *limit = (scan_limit *)cinfo->progress;
  j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
  if ((uint32_t)decompress->input_scan_number > limit->max_scans) {
    snprintf(limit->declined, DECLINE_REASON_LENGTH, "more than %u scans", limit->max_scans);
    longjmp(*limit->escape, 1);
  }
}

static void escape_with_message(j_common_ptr cinfo, const char *prefix) {
  error_manager *errors = (error_manager *)cinfo->err;
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  snprintf(errors->declined, DECLINE_REASON_LENGTH, "%s%s", prefix, message);
  longjmp(errors->escape, 1);
}

static void on_error_exit(j_common_ptr cinfo) { escape_with_message(cinfo, "libjpeg error: "); }

/* sharp decodes with failOn 'error', which tolerates "extraneous bytes before marker"; any other warning (a
 * truncated or corrupt stream) is left to sharp so that it fails or passes exactly as before. findWarning counts
 * extraneous bytes too: entropy data that is garbage throughout decodes without a Huffman fault and ends as
 * thousands of "extraneous" bytes before the end-of-image marker. */
static void on_message(j_common_ptr cinfo, int level) {
  error_manager *errors = (error_manager *)cinfo->err;
  if (level < 0 && (errors->strict || cinfo->err->msg_code != JWRN_EXTRANEOUS_DATA)) escape_with_message(cinfo, "libjpeg warning: ");
}

static uint32_t read_u16(const uint8_t *p, int little_endian) {
  return little_endian ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | (uint32_t)p[1];
}

static uint32_t read_u32(const uint8_t *p, int little_endian) {
  return little_endian ? read_u16(p, 1) | read_u16(p + 2, 1) << 16 : read_u16(p, 0) << 16 | read_u16(p + 2, 0);
}

/* The EXIF orientation tag of an APP1 "Exif" segment: 1 when absent, 0 when the segment cannot be read. */
static uint32_t exif_orientation(const uint8_t *segment, size_t length) {
  if (length < 6 + 8) return 0;
  const uint8_t *tiff = segment + 6;
  size_t tiff_length = length - 6;
  int little_endian;
  if (tiff[0] == 'I' && tiff[1] == 'I') little_endian = 1;
  else if (tiff[0] == 'M' && tiff[1] == 'M') little_endian = 0;
  else return 0;
  uint32_t ifd = read_u32(tiff + 4, little_endian);
  if (ifd > tiff_length - 2) return 0;
  uint32_t entries = read_u16(tiff + ifd, little_endian);
  if (entries > (tiff_length - ifd - 2) / 12) return 0;
  for (uint32_t i = 0; i < entries; i++) {
    const uint8_t *entry = tiff + ifd + 2 + 12 * i;
    if (read_u16(entry, little_endian) == 0x0112) return read_u16(entry + 8, little_endian);
  }
  return 1;
}

/* Why this stream is left to sharp, or NULL when the fast path reproduces sharp's display of it. */
static const char *unsupported_feature(j_decompress_ptr cinfo) {
  if (cinfo->data_precision != 8) return "not 8-bit";
  if (cinfo->jpeg_color_space != JCS_YCbCr && cinfo->jpeg_color_space != JCS_GRAYSCALE) {
    return "colour space other than YCbCr or greyscale";
  }
  for (jpeg_saved_marker_ptr marker = cinfo->marker_list; marker != NULL; marker = marker->next) {
    if (marker->marker == JPEG_APP0 + 2 && marker->data_length >= 12 && memcmp(marker->data, "ICC_PROFILE\0", 12) == 0) {
      return "ICC profile";
    }
    if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= 6 && memcmp(marker->data, "Exif\0\0", 6) == 0 &&
        exif_orientation(marker->data, marker->data_length) != 1) {
      return "EXIF orientation other than 1";
    }
  }
  return NULL;
}

/* One output sample's source span and normalised triangle weights along one axis. */
typedef struct {
  uint32_t first;
  uint32_t count;
  float *weights;
} filter_tap;

/* Pillow's BILINEAR taps for a reduction from `in` to `out` samples (out <= in): pixel centres aligned, the
 * triangle widened by the scale so that every source sample counts. */
static filter_tap *triangle_taps(uint32_t in, uint32_t out, float **storage) {
  double scale = (double)in / out;
  double support = scale;
  uint32_t max_count = (uint32_t)(2 * support) + 2;
  filter_tap *taps = malloc(sizeof(filter_tap) * out);
  *storage = malloc(sizeof(float) * max_count * out);
  if (taps == NULL || *storage == NULL) {
    free(taps);
    free(*storage);
    *storage = NULL;
    return NULL;
  }
  for (uint32_t i = 0; i < out; i++) {
    double center = (i + 0.5) * scale;
    double low = center - support + 0.5, high = center + support + 0.5;
    uint32_t first = low < 0 ? 0 : (uint32_t)low;
    uint32_t end = high > in ? in : (uint32_t)high;
    float *weights = *storage + (size_t)i * max_count;
    double total = 0;
    uint32_t count = 0;
    for (uint32_t j = first; j < end && count < max_count; j++, count++) {
      double distance = (j + 0.5 - center) / scale;
      double weight = distance < 0 ? 1 + distance : 1 - distance;
      weights[count] = (float)(weight > 0 ? weight : 0);
      total += weights[count];
    }
    for (uint32_t k = 0; k < count; k++) weights[k] = (float)(weights[k] / total);
    taps[i] = (filter_tap){first, count, weights};
  }
  return taps;
}

static uint8_t to_byte(float value) { return value <= 0 ? 0 : value >= 255 ? 255 : (uint8_t)(value + 0.5f); }

/* Four floats in one SIMD register (GCC and Clang vector extension, SSE on x86-64, NEON on arm64): a pixel's R, G, B
 * and the next pixel's R, which is weighted too and thrown away, so that each tap of the horizontal pass is one
 * multiply-add instead of three. */
typedef float float4 __attribute__((vector_size(16)));

/* Reduces an RGB image of in_width x in_height to size x size: each output row is first the weighted sum of its
 * source rows (a loop over whole rows, which the compiler vectorises), then reduced along the row one whole pixel
 * at a time (float4). NULL when out of memory. */
static uint8_t *reduce_to_square(const uint8_t *rgb, uint32_t in_width, uint32_t in_height, uint32_t size) {
  float *horizontal_storage = NULL, *vertical_storage = NULL;
  filter_tap *horizontal = triangle_taps(in_width, size, &horizontal_storage);
  filter_tap *vertical = triangle_taps(in_height, size, &vertical_storage);
  size_t in_stride = (size_t)in_width * 3;
  /* One float past the row, so that the last pixel's float4 load stays inside; zero, so its product is finite. */
  float *column_sums = malloc(sizeof(float) * (in_stride + 1));
  uint8_t *out = malloc((size_t)size * size * 3);
  if (horizontal == NULL || vertical == NULL || column_sums == NULL || out == NULL) {
    free(out);
    out = NULL;
    goto done;
  }
  column_sums[in_stride] = 0;
  for (uint32_t y = 0; y < size; y++) {
    const filter_tap *row_tap = &vertical[y];
    for (size_t i = 0; i < in_stride; i++) column_sums[i] = 0;
    for (uint32_t k = 0; k < row_tap->count; k++) {
      const uint8_t *source = rgb + (size_t)(row_tap->first + k) * in_stride;
      float weight = row_tap->weights[k];
      for (size_t i = 0; i < in_stride; i++) column_sums[i] += weight * source[i];
    }
    uint8_t *target = out + (size_t)y * size * 3;
    for (uint32_t x = 0; x < size; x++) {
      const filter_tap *tap = &horizontal[x];
      const float *pixel = column_sums + (size_t)tap->first * 3;
      float4 sum = {0, 0, 0, 0};
      for (uint32_t k = 0; k < tap->count; k++, pixel += 3) {
        float4 value;
        memcpy(&value, pixel, sizeof value);
        float weight = tap->weights[k];
        sum += (float4){weight, weight, weight, weight} * value;
      }
      target[x * 3] = to_byte(sum[0]);
      target[x * 3 + 1] = to_byte(sum[1]);
      target[x * 3 + 2] = to_byte(sum[2]);
    }
  }
done:
  free(horizontal);
  free(horizontal_storage);
  free(vertical);
  free(vertical_storage);
  free(column_sums);
  return out;
}

static void decline(decode_job *job, const char *reason) { snprintf(job->declined, DECLINE_REASON_LENGTH, "%s", reason); }

/* Reads every scan at 1/8 scale (DC only) into one reused row: what is wanted is the warnings, not the pixels. */
static void find_warning(j_decompress_ptr cinfo) {
  cinfo->scale_num = 1;
  cinfo->scale_denom = 8;
  jpeg_start_decompress(cinfo);
  JSAMPARRAY row = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE, cinfo->output_width * cinfo->output_components, 1);
  while (cinfo->output_scanline < cinfo->output_height) jpeg_read_scanlines(cinfo, row, 1);
  jpeg_finish_decompress(cinfo);
}

static void decode(decode_job *job) {
  struct jpeg_decompress_struct cinfo;
  error_manager errors;
  scan_limit limit;
  uint8_t *volatile scaled = NULL;
  cinfo.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = on_error_exit;
  errors.base.emit_message = on_message;
  errors.declined = job->declined;
  errors.strict = job->find_warning;
  jpeg_create_decompress(&cinfo);
  if (setjmp(errors.escape)) {
    free(scaled);
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  limit.base.progress_monitor = on_progress;
  limit.max_scans = job->max_scans;
  limit.declined = job->declined;
  limit.escape = &errors.escape;
  cinfo.progress = &limit.base;
  jpeg_mem_src(&cinfo, job->input, (unsigned long)job->input_length);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    decline(job, "no image in the stream");
  } else if (job->find_warning) {
    find_warning(&cinfo);
  } else if ((double)cinfo.image_width * cinfo.image_height > job->max_pixels) {
    decline(job, "more pixels than allowed");
  } else if ((double)cinfo.image_width * 2 < job->size || (double)cinfo.image_height * 2 < job->size) {
    decline(job, "enlargement beyond 2x");
  } else {
    const char *unsupported = unsupported_feature(&cinfo);
    if (unsupported != NULL) {
      decline(job, unsupported);
    } else {
      /* The smallest M/8 whose output reaches `size` on both sides; M = 16 (twice the size) always does, as larger
       * enlargements were declined above. */
      for (unsigned int eighths = 1; eighths <= 16; eighths++) {
        cinfo.scale_num = eighths;
        cinfo.scale_denom = 8;
        jpeg_calc_output_dimensions(&cinfo);
        if (cinfo.output_width >= job->size && cinfo.output_height >= job->size) break;
      }
      cinfo.out_color_space = JCS_RGB;
      jpeg_start_decompress(&cinfo);
      size_t stride = (size_t)cinfo.output_width * 3;
      scaled = malloc(stride * cinfo.output_height);
      if (scaled == NULL) {
        decline(job, "out of memory");
      } else {
        while (cinfo.output_scanline < cinfo.output_height) {
          JSAMPROW row = scaled + stride * cinfo.output_scanline;
          jpeg_read_scanlines(&cinfo, &row, 1);
        }
        jpeg_finish_decompress(&cinfo);
        job->pixels = reduce_to_square(scaled, cinfo.output_width, cinfo.output_height, job->size);
        if (job->pixels == NULL) decline(job, "out of memory");
      }
    }
  }
  free(scaled);
  jpeg_destroy_decompress(&cinfo);
}

static void execute(napi_env env, void *data) {
  (void)env;
  decode((decode_job *)data);
}

static void complete(napi_env env, napi_status status, void *data) {
  decode_job *job = data;
  napi_value result;
  if (status != napi_ok) {
    napi_create_string_utf8(env, "cancelled", NAPI_AUTO_LENGTH, &result);
  } else if (job->pixels != NULL) {
    size_t length = (size_t)job->size * job->size * 3;
    napi_create_buffer_copy(env, length, job->pixels, NULL, &result);
  } else if (job->find_warning && job->declined[0] == '\0') {
    napi_get_null(env, &result);
  } else {
    napi_create_string_utf8(env, job->declined, NAPI_AUTO_LENGTH, &result);
  }
  napi_resolve_deferred(env, job->deferred, result);
  napi_delete_reference(env, job->input_ref);
  napi_delete_async_work(env, job->work);
  free(job->pixels);
  free(job);
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* The JPEG bytes of argv[0] (kept alive until the job completes) and its scan limit, argv[scans_at]. */
static napi_value queue_job(napi_env env, napi_value *argv, decode_job *job, size_t scans_at, const char *usage) {
  bool is_typed_array = false;
  napi_is_typedarray(env, argv[0], &is_typed_array);
  napi_typedarray_type type;
  size_t length;
  void *bytes;
  if (!is_typed_array || napi_get_typedarray_info(env, argv[0], &type, &length, &bytes, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    free(job);
    return throw_type_error(env, usage);
  }
  if (napi_get_value_uint32(env, argv[scans_at], &job->max_scans) != napi_ok || job->max_scans < 1) {
    free(job);
    return throw_type_error(env, usage);
  }
  job->input = bytes;
  job->input_length = length;
  napi_value promise, name;
  napi_create_reference(env, argv[0], 1, &job->input_ref);
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "catdog:jpeg-decode", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

/* A zeroed job for a call of exactly `count` arguments, read into argv; NULL, with a JavaScript error thrown, when
 * the call has another count or memory runs out. */
static decode_job *new_job(napi_env env, napi_callback_info info, napi_value *argv, size_t count, const char *usage) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != count) {
    throw_type_error(env, usage);
    return NULL;
  }
  decode_job *job = calloc(1, sizeof(decode_job));
  if (job == NULL) napi_throw_error(env, NULL, "catdog jpeg-decode: out of memory");
  return job;
}

static const char *const DECODE_USAGE =
    "decodeScaled(jpeg: Uint8Array, size: positive integer, maxPixels: number, maxScans: positive integer)";

static napi_value decode_scaled(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  decode_job *job = new_job(env, info, argv, 4, DECODE_USAGE);
  if (job == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &job->size) != napi_ok || job->size < 1 ||
      napi_get_value_double(env, argv[2], &job->max_pixels) != napi_ok) {
    free(job);
    return throw_type_error(env, DECODE_USAGE);
  }
  return queue_job(env, argv, job, 3, DECODE_USAGE);
}

static const char *const WARNING_USAGE = "findWarning(jpeg: Uint8Array, maxScans: positive integer)";

static napi_value find_warning_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  decode_job *job = new_job(env, info, argv, 2, WARNING_USAGE);
  if (job == NULL) return NULL;
  job->find_warning = 1;
  return queue_job(env, argv, job, 1, WARNING_USAGE);
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "decodeScaled", NAPI_AUTO_LENGTH, decode_scaled, NULL, &function);
  napi_set_named_property(env, exports, "decodeScaled", function);
  napi_create_function(env, "findWarning", NAPI_AUTO_LENGTH, find_warning_js, NULL, &function);
  napi_set_named_property(env, exports, "findWarning", function);
  return exports;
}
