/* SPDX-License-Identifier: MIT */
#ifndef MK_VERSION_H
#define MK_VERSION_H
#define MK_VERSION "0.1.0"
#endif
