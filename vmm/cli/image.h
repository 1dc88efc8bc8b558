/* SPDX-License-Identifier: MIT */
/*
 * husk image create|info|convert: disk images made, described and copied
 * through the same block backends the VM uses (devices/block/).
 */
#ifndef HUSK_CLI_IMAGE_H
#define HUSK_CLI_IMAGE_H

/* argv[0] is "image"; returns the exit status (vmm/error.h). */
int husk_image_main(int argc, char **argv);

#endif
