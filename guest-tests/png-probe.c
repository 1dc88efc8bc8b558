// SPDX-License-Identifier: MIT
/*
 * The GPU tests' eye in the test host (static: nothing to stage there):
 * reads a PNG and prints its size, then the colour at each point asked for.
 *   png-probe FILE X,Y...    ->  "WIDTHxHEIGHT" then "X,Y RRGGBB" per point
 * Exit status 1, with one line on stderr, for a file that is not a PNG or
 * a point outside it.
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	png_image png = {.version = PNG_IMAGE_VERSION};

	if (argc < 2) {
		fprintf(stderr, "usage: png-probe FILE [X,Y]...\n");
		return 2;
	}
	if (!png_image_begin_read_from_file(&png, argv[1])) {
		fprintf(stderr, "png-probe: %s: %s\n", argv[1], png.message);
		return 1;
	}
	png.format = PNG_FORMAT_RGB;
	unsigned char *rgb = malloc(PNG_IMAGE_SIZE(png));
	if (!rgb || !png_image_finish_read(&png, NULL, rgb, 0, NULL)) {
		fprintf(stderr, "png-probe: %s: %s\n", argv[1],
		        rgb ? png.message : "out of memory");
		return 1;
	}
	printf("%ux%u\n", png.width, png.height);
	for (int i = 2; i < argc; i++) {
		unsigned int x, y;
		if (sscanf(argv[i], "%u,%u", &x, &y) != 2 || x >= png.width || y >= png.height) {
			fprintf(stderr, "png-probe: %s is not a point inside the picture\n",
			        argv[i]);
			return 1;
		}
		const unsigned char *p = rgb + ((size_t)y * png.width + x) * 3;
		printf("%u,%u %02x%02x%02x\n", x, y, p[0], p[1], p[2]);
	}
	free(rgb);
	return 0;
}
