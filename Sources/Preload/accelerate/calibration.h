/*
 * accelerate/calibration.h — the machine's calibration (`privbox doctor --calibrate`), read before
 * routes are installed (calibration.c).
 *
 * May use: executors/ and sys/ (declarations only).
 */
#ifndef PRIVBOX_CALIBRATION_H
#define PRIVBOX_CALIBRATION_H

#include "executors/executor.h"

/* Reads the calibration file, if one holds for this machine, and tells the executor protocol
 * which executors it says lose here (pb_exec_calibrated_slower). */
void pb_read_calibration(void) PB_HIDDEN;

#endif
