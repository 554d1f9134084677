/* placeholder: being written */
typedef int parley_placeholder_feed_t;
