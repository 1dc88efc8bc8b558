/* SPDX-License-Identifier: MIT */
/*
 * A disk is a stack of block backends: a format (raw, qcow2) over a file,
 * a backing chain under it, an optional throwaway overlay on top. The
 * virtio-blk device sees this interface and never a format.
 *
 * Every operation may be called from several threads at once (virtio-blk
 * serves requests from a pool of workers); each backend does its own
 * locking. Operations return 0 or a negative errno; offsets and lengths
 * are bytes, checked by the caller to lie inside the virtual size.
 *
 * A new format is one file here exporting a struct block_format, named in
 * the table in block.c (and its extern below, and devices/meson.build).
 */
#ifndef HUSK_BLOCK_H
#define HUSK_BLOCK_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOCK_MAX_CHAIN 16 /* backing files below one image, at most */

struct block_backend;

struct block_info {
	uint64_t cluster_size;                     /* 0 where the format has none */
	bool dirty;                                /* qcow2: refcounts need a repair */
	const char *backing_name, *backing_format; /* as the image records them, or NULL */
	struct block_backend *backing;             /* opened, or NULL */
};

/* The files of one chain, top first, to refuse a loop. */
struct block_chain {
	unsigned int depth;
	struct {
		uint64_t dev, ino;
	} file[BLOCK_MAX_CHAIN + 1];
};

struct block_ops {
	int (*read)(struct block_backend *b, void *buf, size_t len, uint64_t off);
	int (*write)(struct block_backend *b, const void *buf, size_t len, uint64_t off);
	/* Returns once everything written before it is durable (fdatasync). */
	int (*flush)(struct block_backend *b);
	/* The range's contents become unspecified; -EOPNOTSUPP where it cannot. */
	int (*discard)(struct block_backend *b, uint64_t off, uint64_t len);
	/* The range reads as zeros; may_unmap lets it give the space back. */
	int (*write_zeroes)(struct block_backend *b, uint64_t off, uint64_t len, bool may_unmap);
	/* Optional: a read that never waits for a disk, or -EAGAIN (RWF_NOWAIT). */
	int (*read_nowait)(struct block_backend *b, void *buf, size_t len, uint64_t off);
	/* Optional: what `husk image info` shows beyond the size. */
	void (*describe)(struct block_backend *b, struct block_info *out);
	void (*close)(struct block_backend *b);
};

/* The part every backend shares; a backend's own struct starts with it. */
struct block_backend {
	const struct block_ops *ops;
	const char *format; /* "raw", "qcow2", "snapshot" */
	uint64_t size;      /* virtual size in bytes */
	bool read_only;
	bool in_memory; /* reads and writes never wait for a disk (tmpfs) */
};

struct block_open_options {
	const char *format; /* "raw", "qcow2", or NULL to detect it (see block.c) */
	bool read_only;
	bool snapshot; /* writes go to a throwaway overlay; the image is opened read-only */
	bool direct;   /* O_DIRECT where the format supports it (raw) */
};

/*
 * Opens and locks an image and everything under it (F_OFD_SETLK: shared
 * when read-only, exclusive otherwise). Errors name the path; a bad or
 * unsafe image is HUSK_EXIT_USAGE.
 */
struct block_backend *block_open(const char *path, const struct block_open_options *o,
                                 GError **err);
void block_close(struct block_backend *b);

/* Fills what the backend can tell (all zeros and NULLs where it has nothing). */
void block_describe(struct block_backend *b, struct block_info *out);

/*
 * Makes a new, empty image (an existing file is replaced). A backing file
 * (qcow2 only) is named as given, relative to the new image's folder, and
 * recorded with its format; size 0 takes the backing file's size.
 */
bool block_create(const char *path, const char *format, uint64_t size, const char *backing,
                  const char *backing_format, GError **err);

/* Reads len bytes at off; 0 or a negative errno. Bytes past the end read as an error. */
int block_pread(struct block_backend *b, void *buf, size_t len, uint64_t off);
int block_pwrite(struct block_backend *b, const void *buf, size_t len, uint64_t off);

/* ---- for formats ------------------------------------------------------------------ */

struct block_format {
	const char *name;
	/* Does this header (the file's first bytes, zero-padded) belong to the format? */
	bool (*probe)(const uint8_t *head, size_t len);
	/*
	 * Opens the format on fd (locked already; the backend owns it from now,
	 * and closes it on failure too). chain holds this file and those above.
	 */
	struct block_backend *(*open)(int fd, const char *path, const struct block_open_options *o,
	                              struct block_chain *chain, GError **err);
	/* Writes an empty image of 'size' bytes to the empty file fd (block_create). */
	bool (*create)(int fd, const char *path, uint64_t size, const char *backing,
	               const char *backing_format, GError **err);
};

extern const struct block_format block_raw, block_qcow2;

/* Opens a backing file whose format the image above recorded; read-only, never probed. */
struct block_backend *block_open_backing(const char *path, const char *format,
                                         struct block_chain *chain, GError **err);

/* The throwaway overlay (snapshot.c) over any backend, which it then owns. */
struct block_backend *block_snapshot_new(struct block_backend *base, GError **err);

/* pread/pwrite of exactly len bytes; reads past the end of the file give zeros. */
int block_full_io(int fd, void *buf, size_t len, uint64_t off, bool is_write);

#endif
