/* placeholder: being written */
typedef int parley_placeholder_pub_t;
