/* macOS always has /etc/resolver (resolver(5)); configd notices changes by
 * itself, and flushing mDNSResponder's cache drops stale negative answers. */
#include "resolver.h"

resolver_kind resolver_detect(const resolver_config *cfg)
{
    (void)cfg;
    return RESOLVER_MACOS;
}

const char *const *resolver_reload_argv(resolver_kind k)
{
    static const char *const flush[] = {"killall", "-HUP", "mDNSResponder", NULL};
    return k == RESOLVER_MACOS ? flush : NULL;
}
