/* version.h - the release this tree builds. */
#ifndef CFHOOK_VERSION_H
#define CFHOOK_VERSION_H

#define CFHOOK_VERSION	"0.1.0"

#endif
