/*
 * tdnskrs/tdnskrs.h — umbrella header of libtdnskrs, the TDNS Key Receiver Service library.
 *
 *   #include <tdnskrs/tdnskrs.h>
 *   cc app.c $(pkg-config --cflags --libs tdnskrs)
 */
#ifndef TDNSKRS_TDNSKRS_H
#define TDNSKRS_TDNSKRS_H

#include "common.h"
#include "crypto.h"
#include "krs.h"

#endif /* TDNSKRS_TDNSKRS_H */
