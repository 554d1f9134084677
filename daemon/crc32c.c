/* placeholder: being written */
typedef int parley_placeholder_crc32c_t;
