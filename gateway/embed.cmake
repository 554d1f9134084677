# embed.cmake - write assets.c, the board's files as C arrays (see
# assets.h). Run as a script at build time:
#
#   cmake -DSRC=<gateway/www> -DOUT=<build>/assets.c
#         -DFILES=index.html,board.css,board.js -P embed.cmake
#
# Each file becomes a byte array, its media type follows from its
# extension, and its ETag is the start of its SHA-256.
foreach(var SRC OUT FILES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed.cmake: -D${var}= is required")
  endif()
endforeach()

string(REPLACE "," ";" FILES "${FILES}")
set(body "")
set(table "")
set(i 0)
foreach(name ${FILES})
  set(path "${SRC}/${name}")
  file(READ "${path}" hex HEX)
  file(SHA256 "${path}" sum)
  string(SUBSTRING "${sum}" 0 20 etag)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  # Twenty bytes a line: "0xNN," each.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){20})" "\\1\n    " bytes "${bytes}")
  if(name MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(name MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  elseif(name MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(name MATCHES "\\.svg$")
    set(type "image/svg+xml")
  elseif(name MATCHES "\\.png$")
    set(type "image/png")
  else()
    message(FATAL_ERROR "embed.cmake: no media type for ${name}")
  endif()
  string(APPEND body "static const unsigned char s_data_${i}[] = {\n    ${bytes}0x00\n};\n")
  string(APPEND table "    { \"/${name}\", \"${type}\", s_data_${i}, ${len}, \"\\\"${etag}\\\"\" },\n")
  math(EXPR i "${i} + 1")
endforeach()

set(text "/* Written by gateway/embed.cmake from gateway/www/: do not edit. */
#include \"assets.h\"

#include <string.h>

${body}
static const gw_asset_t s_assets[] = {
${table}};

const gw_asset_t *
gw_asset_find(const char *path)
{
    for (size_t i = 0; i < sizeof(s_assets) / sizeof(s_assets[0]); i++)
        if (strcmp(path, s_assets[i].path) == 0)
            return &s_assets[i];
    return NULL;
}
")
# Only touch the output when it changes, so nothing rebuilds for nothing.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${text}")
