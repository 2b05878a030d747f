/* attr.h - the compiler attributes headers put on their functions. */
#ifndef CFHOOK_ATTR_H
#define CFHOOK_ATTR_H

/* The result says whether it worked: a caller that drops it is a bug
 * (gcc warns even through a (void) cast, so none is written). */
#define MUST_CHECK	__attribute__((warn_unused_result))

#endif
