{
  "targets": [
    {
      "target_name": "jpeg_decode",
      "sources": ["jpeg_decode.c"],
      "libraries": ["-ljpeg"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra"]
    }
  ]
}
