# bash completion for loophole(1).
# Installed to <datadir>/bash-completion/completions/loophole.

_loophole()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="ls status expose unexpose lease resolve-install resolve-uninstall doctor serve version help"
    local serve_flags="--config --control-socket --state-dir --dns-listen --domain --dns-ttl
        --pool --docker-host --user --resolver --resolver-root --alias --dial-timeout-ms
        --udp-idle-s --udp-max-sessions --admin-group --log-level --host-ports-mode
        --sidecar-image --serve --forward --address-per --help -h --version"

    # The subcommand: the first word after the global options.
    local i cmd="" cmd_at=0
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --socket) ((i++)) ;;
        --socket=*) ;;
        -*) ;;
        *)
            cmd=${words[i]}
            cmd_at=$i
            break
            ;;
        esac
    done

    if [[ -z $cmd ]]; then
        case $prev in
        --socket)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--socket --help -h --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    case $cmd in
    ls)
        COMPREPLY=($(compgen -W "-a --all --json -w --watch -h --help" -- "$cur"))
        ;;
    status)
        COMPREPLY=($(compgen -W "--json -h --help" -- "$cur"))
        ;;
    expose | unexpose)
        # The container first (running ones, as Docker names them); the
        # specs and ports after it are the person's own.
        if ((cword == cmd_at + 1)); then
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "-h --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(docker ps --format '{{.Names}}' 2>/dev/null)" -- "$cur"))
            fi
        fi
        ;;
    lease)
        # lease add NAME [--addr IP] | rm NAME | ls [--json]
        local sub=${words[cmd_at + 1]:-}
        if ((cword == cmd_at + 1)); then
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "-h --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "add rm ls" -- "$cur"))
            fi
            return
        fi
        case $sub in
        add)
            [[ $prev == --addr ]] && return
            [[ $cur == -* ]] && COMPREPLY=($(compgen -W "--addr -h --help" -- "$cur"))
            ;;
        rm)
            # The names leased now (the table's first column).
            if ((cword == cmd_at + 2)) && [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -W "$(loophole lease ls 2>/dev/null | awk 'NR > 1 {print $1}')" -- "$cur"))
            fi
            ;;
        ls)
            COMPREPLY=($(compgen -W "--json -h --help" -- "$cur"))
            ;;
        esac
        ;;
    doctor | resolve-install | resolve-uninstall)
        ((cword == cmd_at + 1)) && COMPREPLY=($(compgen -W "-h --help" -- "$cur"))
        ;;
    help)
        ((cword == cmd_at + 1)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        ;;
    serve)
        case $prev in
        --config | --control-socket | --resolver-root)
            COMPREPLY=($(compgen -f -- "$cur"))
            ;;
        --state-dir)
            COMPREPLY=($(compgen -d -- "$cur"))
            ;;
        --resolver)
            COMPREPLY=($(compgen -W "auto off" -- "$cur"))
            ;;
        --alias)
            COMPREPLY=($(compgen -W "auto off netlink" -- "$cur"))
            ;;
        --log-level)
            COMPREPLY=($(compgen -W "error warn info debug" -- "$cur"))
            ;;
        --host-ports-mode)
            COMPREPLY=($(compgen -W "auto netns sidecar" -- "$cur"))
            ;;
        --serve)
            COMPREPLY=($(compgen -W "exposed published" -- "$cur"))
            ;;
        --forward)
            COMPREPLY=($(compgen -W "auto direct mapped" -- "$cur"))
            ;;
        --address-per)
            COMPREPLY=($(compgen -W "container project" -- "$cur"))
            ;;
        --user)
            COMPREPLY=($(compgen -u -- "$cur"))
            ;;
        --admin-group)
            COMPREPLY=($(compgen -g -- "$cur"))
            ;;
        --dns-listen | --domain | --dns-ttl | --pool | --docker-host | --dial-timeout-ms | \
            --udp-idle-s | --udp-max-sessions | --sidecar-image) ;;
        *)
            COMPREPLY=($(compgen -W "$serve_flags" -- "$cur"))
            ;;
        esac
        ;;
    esac
}
complete -F _loophole loophole
