/* The chat page served at / (server/webui.html), compiled in as bytes by
 * server/embed.sh at build time: nothing is read or fetched at run time. */
#ifndef LLAMA2_SERVER_WEBUI_H
#define LLAMA2_SERVER_WEBUI_H

#include <stddef.h>

extern const unsigned char server_webui_html[];
extern const size_t server_webui_html_len;

#endif
