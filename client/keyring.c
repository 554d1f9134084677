/* placeholder: being written */
typedef int parley_placeholder_keyring_t;
