/*
 * heap.h - how parleyd sets up glibc's allocator, and how it hands free
 * memory back to the system without ever shrinking the heap.
 *
 * Why the heap is never shrunk. libzmq 4.3.4 (Debian 12's) can keep a
 * pointer to a feed connection's pipe after the pipe is freed (feed.c,
 * catch 2), and reads a field through it each time it delivers on a
 * topic that pointer was granted. (libzmq 4.3.5 stops the grant, by
 * reading the freed pipe the same way.) From memory that is still
 * mapped, the read finds a stale number, and at worst one delivery goes
 * to another connection of the same access class. From memory that
 * glibc gave back to the system by lowering the program break (the top
 * of the heap, after a trim), the read kills parleyd with SIGSEGV; a
 * client allowed to subscribe could bring that about by subscribing and
 * hanging up quickly, over and over (test_feed_reuse did, about one run
 * in fifty under load).
 *
 * So parleyd sets one arena (every thread allocates from the main heap,
 * made by brk()), never lets glibc lower the break, and hands free pages
 * back with madvise(MADV_DONTNEED) (pd_heap_give_back()): their memory
 * returns to the system, their addresses stay mapped, and a read there
 * finds zeros. What differs from lowering the break: a free region at
 * the very top of the heap stays resident until it is reused (glibc
 * releases pages of free chunks inside the heap, not of its top).
 *
 * Large allocations (from PD_HEAP_MMAP_THRESHOLD on: replies, snapshots)
 * are mapped on their own and unmapped when freed; libzmq's pipes are a
 * few hundred bytes and always come from the heap.
 */
#ifndef PD_HEAP_H
#define PD_HEAP_H

/* Allocations from this size on are mapped on their own. */
#define PD_HEAP_MMAP_THRESHOLD (128 * 1024)

/*
 * Set the allocator up as described above. Call first thing in main(),
 * before any thread starts (the arena limit applies to threads made
 * afterwards). Not glibc: does nothing.
 */
void pd_heap_setup(void);

/*
 * Hand the free pages inside the heap back to the system; the heap keeps
 * its size and stays mapped. Costs a walk of glibc's free lists (about a
 * millisecond with thousands of free chunks): call it after a burst has
 * gone, not per message. Not glibc: does nothing.
 */
void pd_heap_give_back(void);

#endif /* PD_HEAP_H */
