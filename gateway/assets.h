/*
 * assets.h - the status board's files, compiled into the program.
 *
 * assets.c is written at build time by embed.cmake from gateway/www/
 * (CMake alone: no xxd, nothing at run time), so the gateway serves the
 * board without any file on disk and without a CDN.
 */
#ifndef GW_ASSETS_H
#define GW_ASSETS_H

#include <stddef.h>

typedef struct gw_asset {
    const char *path;          /* "/board.js" */
    const char *type;          /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag;          /* quoted, from the file's SHA-256 */
} gw_asset_t;

/* The file served at path ("/index.html" for the board), or NULL. */
const gw_asset_t *gw_asset_find(const char *path);

#endif /* GW_ASSETS_H */
