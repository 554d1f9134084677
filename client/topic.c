/* placeholder: being written */
typedef int parley_placeholder_topic_t;
