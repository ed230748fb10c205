# fish completion for loophole(1).
# Installed to <datadir>/fish/vendor_completions.d/loophole.fish.

set -l loophole_commands ls status expose unexpose lease resolve-install resolve-uninstall doctor serve version help

complete -c loophole -f
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -l socket -r -F -d 'Control socket of the daemon'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -s h -l help -d 'Show the help'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -l version -d 'Print the version'

complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a ls -d 'List containers with their names and addresses'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a status -d 'Show the state of the daemon'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a expose -d 'Let a container reach a host port at its localhost'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a unexpose -d 'Take back a port given with expose'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a lease -d 'Named addresses for what is not a container'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a resolve-install -d 'Install the system resolver entry'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a resolve-uninstall -d 'Remove the system resolver entry'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a doctor -d 'Check the setup and explain problems'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a serve -d 'Run the daemon in the foreground'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a version -d 'Print the version'
complete -c loophole -n "not __fish_seen_subcommand_from $loophole_commands" -a help -d 'Show the help'

complete -c loophole -n '__fish_seen_subcommand_from ls; and not __fish_seen_subcommand_from lease' -s a -l all -d 'Also containers without a served port, and skipped ones'
complete -c loophole -n '__fish_seen_subcommand_from ls; and not __fish_seen_subcommand_from lease' -l json -d 'Machine-readable output'
complete -c loophole -n '__fish_seen_subcommand_from ls; and not __fish_seen_subcommand_from lease' -s w -l watch -d 'Follow changes'
complete -c loophole -n '__fish_seen_subcommand_from status' -l json -d 'Machine-readable output'
# expose and unexpose: the container first (running ones), then the person's specs.
complete -c loophole -n '__fish_seen_subcommand_from expose unexpose; and test (count (commandline -opc)) -le 2' -a '(docker ps --format "{{.Names}}" 2>/dev/null)' -d 'Container'
# lease add NAME [--addr IP] | rm NAME | ls [--json]
set -l lease '__fish_seen_subcommand_from lease'
complete -c loophole -n "$lease; and not __fish_seen_subcommand_from add rm ls" -a add -d 'Lease an address under a name and print it'
complete -c loophole -n "$lease; and not __fish_seen_subcommand_from add rm ls" -a rm -d 'Remove a lease and its alias'
complete -c loophole -n "$lease; and not __fish_seen_subcommand_from add rm ls" -a ls -d 'List the leases'
complete -c loophole -n "$lease; and __fish_seen_subcommand_from add" -l addr -x -d 'The address to lease (127.0.0.X)'
complete -c loophole -n "$lease; and __fish_seen_subcommand_from rm; and test (count (commandline -opc)) -le 3" -a '(loophole lease ls 2>/dev/null | awk \'NR > 1 {print $1}\')' -d 'Lease'
complete -c loophole -n "$lease; and __fish_seen_subcommand_from ls" -l json -d 'Machine-readable output'
complete -c loophole -n '__fish_seen_subcommand_from ls status expose unexpose lease doctor resolve-install resolve-uninstall' -s h -l help -d 'Show the usage'
complete -c loophole -n '__fish_seen_subcommand_from help' -a "$loophole_commands"

# serve passes its options to loopholed(8).
set -l serve '__fish_seen_subcommand_from serve'
complete -c loophole -n $serve -l config -r -F -d 'JSON config file'
complete -c loophole -n $serve -l control-socket -r -F -d 'Control API socket'
complete -c loophole -n $serve -l state-dir -r -a '(__fish_complete_directories)' -d 'State directory'
complete -c loophole -n $serve -l dns-listen -x -d 'DNS server ADDR:PORT'
complete -c loophole -n $serve -l domain -x -d 'DNS domain'
complete -c loophole -n $serve -l dns-ttl -x -d 'TTL of answers in seconds'
complete -c loophole -n $serve -l pool -x -d 'Address pool FIRST-LAST'
complete -c loophole -n $serve -l docker-host -x -d 'Docker engine unix:///path'
complete -c loophole -n $serve -l user -x -a '(__fish_complete_users)' -d 'Whose Docker context to use'
complete -c loophole -n $serve -l resolver -x -a 'auto off' -d 'Install the system resolver entry'
complete -c loophole -n $serve -l resolver-root -r -a '(__fish_complete_directories)' -d 'Prefix for resolver files (testing)'
complete -c loophole -n $serve -l alias -x -a 'auto off netlink' -d 'Loopback aliases'
complete -c loophole -n $serve -l dial-timeout-ms -x -d 'Upstream dial timeout in ms'
complete -c loophole -n $serve -l udp-idle-s -x -d 'Idle UDP session expiry in seconds'
complete -c loophole -n $serve -l udp-max-sessions -x -d 'UDP sessions per port'
complete -c loophole -n $serve -l admin-group -x -a '(__fish_complete_groups)' -d 'Group allowed to change settings'
complete -c loophole -n $serve -l log-level -x -a 'error warn info debug' -d 'Log level'
complete -c loophole -n $serve -l host-ports-mode -x -a 'auto netns sidecar' -d 'How containers reach host ports'
complete -c loophole -n $serve -l sidecar-image -x -d 'Relay image with socat'
complete -c loophole -n $serve -l serve -x -a 'exposed published' -d 'Which containers get names'
complete -c loophole -n $serve -l forward -x -a 'auto direct mapped' -d 'Where connections go'
complete -c loophole -n $serve -l address-per -x -a 'container project' -d 'One address per container or per compose project'
complete -c loophole -n $serve -s h -l help -d 'Show the daemon options'
complete -c loophole -n $serve -l version -d 'Show the daemon version'
