/*
 * heap.c - glibc's allocator as parleyd needs it (see heap.h).
 */
#include "heap.h"

#include <stdint.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

void
pd_heap_setup(void)
{
#ifdef __GLIBC__
    /*
     * One arena for the whole process. libzmq allocates a connection's
     * pipes in its I/O thread and the 16 KB chunks its message queues
     * grow by in the main thread; with an arena per thread, what one
     * frees (the handshake pipes zap_handler.c lets go, a closed
     * connection) cannot serve the other's next allocation, and the peak
     * with many subscribers grows by megabytes. Small allocations go
     * through glibc's per-thread cache, so sharing the arena costs
     * little. It also keeps every pipe in the main heap, which the
     * settings below never shrink.
     */
    mallopt(M_ARENA_MAX, 1);
    /*
     * A fixed mmap threshold: glibc would otherwise raise it as large
     * replies are freed, and keep later ones in a heap that a burst of
     * unread replies leaves fragmented and large after they are gone.
     */
    mallopt(M_MMAP_THRESHOLD, PD_HEAP_MMAP_THRESHOLD);
    /*
     * Never lower the program break (heap.h). Trimming on free() also
     * cost time: with glibc's 128 KB threshold the feed's queues (libzmq's
     * 16 KB chunks, allocated as deliveries are queued and freed by the
     * I/O thread as they are sent) shrank the heap and grew it again, a
     * zeroed page faulted in every ~100 deliveries with 1,000
     * subscribers.
     */
    mallopt(M_TRIM_THRESHOLD, -1);
#endif
}

void
pd_heap_give_back(void)
{
#ifdef __GLIBC__
    /*
     * malloc_trim() releases the pages of every free chunk inside the
     * heap with madvise(MADV_DONTNEED), then lowers the break by what is
     * free at the top beyond pad. A pad larger than the heap keeps the
     * break where it is.
     */
    malloc_trim(SIZE_MAX / 2);
#endif
}
