#ifndef TDNSKRS_CCJOSE_SHIM_H
#define TDNSKRS_CCJOSE_SHIM_H
#include <cjose/cjose.h>
#endif
