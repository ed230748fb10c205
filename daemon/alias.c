/* The portable part of the alias interface: mode names. The address
 * operations live in alias_linux.c and alias_darwin.c. */
#include "alias.h"

#include <string.h>

static const char *const mode_names[] = {
    [ALIAS_AUTO] = "auto",
    [ALIAS_OFF] = "off",
    [ALIAS_NETLINK] = "netlink",
};

int alias_parse_mode(const char *s)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(s, mode_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

const char *alias_mode_name(alias_mode m)
{
    /* The enum may hold any int (e.g. from a corrupt config), so range-check. */
    if ((int)m < 0 || (size_t)m >= sizeof(mode_names) / sizeof(mode_names[0]))
        return "unknown";
    return mode_names[m];
}
