# bash completion for fmtool                                  -*- shell-script -*-
# Generated from fmtool's own commands by `python -m tools.docs_gen`; do not edit.
# Static on purpose: pressing Tab never starts Python.
# Install: copy to ~/.local/share/bash-completion/completions/fmtool
# (or source it from ~/.bashrc).

# The subcommands of a command ("" is fmtool itself).
_fmtool_subcommands() {
    case "$1" in
        '') echo info eval classify project reconstruct fuse report export train ;;
        'train') echo cnn vae ;;
    esac
}

# The options of a command.
_fmtool_options() {
    case "$1" in
        '') echo --version --install-completion --show-completion --help -h ;;
        'info') echo --json --help -h ;;
        'eval') echo --json --limit --device --precision --data-dir --out -o --force --help -h ;;
        'classify') echo --recursive -r --null -0 --checkpoint --top-k -k --invert --save-input --single-view --force --json --device --help -h ;;
        'project') echo --layer -l --method --per-class --seed --thumbnails --no-thumbnails --out -o --checkpoint --force --list-layers --json --device --data-dir --help -h ;;
        'reconstruct') echo --out -o --checkpoint --recursive -r --sample --seed --force --json --device --help -h ;;
        'fuse') echo --steps --method --out -o --group-a --group-b --strength --group-limit --pairs --data-dir --checkpoint --force --json --device --help -h ;;
        'report') echo --cnn --vae --out -o --format --seed --pairs --data-dir --faces-dir --force --json --device --help -h ;;
        'export') echo --format -f --out -o --model -m --force --json --help -h ;;
        'train') echo --help -h ;;
        'train cnn') echo --recipe --epochs --batch-size --lr --weight-decay --optimizer --schedule --step-size --gamma --warmup --ema-decay --evaluate-last --seed --image-size --label-smoothing --crop-padding --flip --no-flip --erase --tta --no-tta --photo-jitter --photo-strength --dropout --variant --width --val-size --limit --test-limit --device --precision --compile --cuda-graph --data-dir --name --resume --no-resume --help -h ;;
        'train vae') echo --recipe --epochs --batch-size --lr --weight-decay --optimizer --schedule --step-size --gamma --warmup --ema-decay --evaluate-last --seed --image-size --latent-dim --val-fraction --decoder --kl-weight --limit --val-limit --device --precision --compile --data-dir --name --resume --no-resume --help -h ;;
    esac
}

# What the value of an option completes to: its choices, @file, @dir or @text; nothing for a flag.
_fmtool_option_value() {
    case "$1" in
        'eval --limit') echo '@text' ;;
        'eval --device') echo 'auto cpu cuda mps' ;;
        'eval --precision') echo 'auto fp32 bf16 fp16' ;;
        'eval --data-dir') echo '@dir' ;;
        'eval --out') echo '@dir' ;;
        'eval -o') echo '@dir' ;;
        'classify --checkpoint') echo '@file' ;;
        'classify --top-k') echo '@text' ;;
        'classify -k') echo '@text' ;;
        'classify --invert') echo 'auto always never' ;;
        'classify --save-input') echo '@dir' ;;
        'classify --device') echo 'auto cpu cuda mps' ;;
        'project --layer') echo '@text' ;;
        'project -l') echo '@text' ;;
        'project --method') echo 'tsne pca' ;;
        'project --per-class') echo '@text' ;;
        'project --seed') echo '@text' ;;
        'project --out') echo '@file' ;;
        'project -o') echo '@file' ;;
        'project --checkpoint') echo '@file' ;;
        'project --device') echo 'auto cpu cuda mps' ;;
        'project --data-dir') echo '@dir' ;;
        'reconstruct --out') echo '@file' ;;
        'reconstruct -o') echo '@file' ;;
        'reconstruct --checkpoint') echo '@file' ;;
        'reconstruct --seed') echo '@text' ;;
        'reconstruct --device') echo 'auto cpu cuda mps' ;;
        'fuse --steps') echo '@text' ;;
        'fuse --method') echo 'lerp slerp' ;;
        'fuse --out') echo '@file' ;;
        'fuse -o') echo '@file' ;;
        'fuse --group-a') echo '@file' ;;
        'fuse --group-b') echo '@file' ;;
        'fuse --strength') echo '@text' ;;
        'fuse --group-limit') echo '@text' ;;
        'fuse --pairs') echo '@file' ;;
        'fuse --data-dir') echo '@dir' ;;
        'fuse --checkpoint') echo '@file' ;;
        'fuse --device') echo 'auto cpu cuda mps' ;;
        'report --cnn') echo '@file' ;;
        'report --vae') echo '@file' ;;
        'report --out') echo '@dir' ;;
        'report -o') echo '@dir' ;;
        'report --format') echo 'png svg pdf' ;;
        'report --seed') echo '@text' ;;
        'report --pairs') echo '@file' ;;
        'report --data-dir') echo '@dir' ;;
        'report --faces-dir') echo '@dir' ;;
        'report --device') echo 'auto cpu cuda mps' ;;
        'export --format') echo 'onnx torchscript' ;;
        'export -f') echo 'onnx torchscript' ;;
        'export --out') echo '@file' ;;
        'export -o') echo '@file' ;;
        'export --model') echo 'cnn vae' ;;
        'export -m') echo 'cnn vae' ;;
        'train cnn --recipe') echo '@text' ;;
        'train cnn --epochs') echo '@text' ;;
        'train cnn --batch-size') echo '@text' ;;
        'train cnn --lr') echo '@text' ;;
        'train cnn --weight-decay') echo '@text' ;;
        'train cnn --optimizer') echo 'adam adamw' ;;
        'train cnn --schedule') echo 'step onecycle cosine' ;;
        'train cnn --step-size') echo '@text' ;;
        'train cnn --gamma') echo '@text' ;;
        'train cnn --warmup') echo '@text' ;;
        'train cnn --ema-decay') echo '@text' ;;
        'train cnn --evaluate-last') echo '@text' ;;
        'train cnn --seed') echo '@text' ;;
        'train cnn --image-size') echo '@text' ;;
        'train cnn --label-smoothing') echo '@text' ;;
        'train cnn --crop-padding') echo '@text' ;;
        'train cnn --erase') echo '@text' ;;
        'train cnn --photo-jitter') echo '@text' ;;
        'train cnn --photo-strength') echo '@text' ;;
        'train cnn --dropout') echo '@text' ;;
        'train cnn --variant') echo 'text code' ;;
        'train cnn --width') echo '@text' ;;
        'train cnn --val-size') echo '@text' ;;
        'train cnn --limit') echo '@text' ;;
        'train cnn --test-limit') echo '@text' ;;
        'train cnn --device') echo 'auto cpu cuda mps' ;;
        'train cnn --precision') echo 'auto fp32 bf16 fp16' ;;
        'train cnn --compile') echo 'auto on off' ;;
        'train cnn --cuda-graph') echo 'auto on off' ;;
        'train cnn --data-dir') echo '@dir' ;;
        'train cnn --name') echo '@text' ;;
        'train vae --recipe') echo '@text' ;;
        'train vae --epochs') echo '@text' ;;
        'train vae --batch-size') echo '@text' ;;
        'train vae --lr') echo '@text' ;;
        'train vae --weight-decay') echo '@text' ;;
        'train vae --optimizer') echo 'adam adamw' ;;
        'train vae --schedule') echo 'step onecycle cosine' ;;
        'train vae --step-size') echo '@text' ;;
        'train vae --gamma') echo '@text' ;;
        'train vae --warmup') echo '@text' ;;
        'train vae --ema-decay') echo '@text' ;;
        'train vae --evaluate-last') echo '@text' ;;
        'train vae --seed') echo '@text' ;;
        'train vae --image-size') echo '@text' ;;
        'train vae --latent-dim') echo '@text' ;;
        'train vae --val-fraction') echo '@text' ;;
        'train vae --decoder') echo 'transposed upsample' ;;
        'train vae --kl-weight') echo '@text' ;;
        'train vae --limit') echo '@text' ;;
        'train vae --val-limit') echo '@text' ;;
        'train vae --device') echo 'auto cpu cuda mps' ;;
        'train vae --precision') echo 'auto fp32 bf16 fp16' ;;
        'train vae --compile') echo 'auto on off' ;;
        'train vae --data-dir') echo '@dir' ;;
        'train vae --name') echo '@text' ;;
    esac
}

# What a command's positional arguments complete to.
_fmtool_arguments() {
    case "$1" in
        'info') echo @file ;;
        'eval') echo @file ;;
        'classify') echo @file ;;
        'reconstruct') echo @dir ;;
        'fuse') echo @file ;;
        'export') echo @file ;;
    esac
}

_fmtool_paths() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen "$1" -- "$cur"))
}

_fmtool() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev='' command='' word sub value i skip=0
    COMPREPLY=()
    # Which (sub)command is being completed: skip options and the values they take.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        [[ $word == = ]] && continue  # --option=value is split at '=' by COMP_WORDBREAKS
        if ((skip)); then skip=0; continue; fi
        if [[ $word == -* ]]; then
            [[ $word != *=* && -n $(_fmtool_option_value "${command:+$command }$word") ]] && skip=1
            continue
        fi
        for sub in $(_fmtool_subcommands "$command"); do
            if [[ $word == "$sub" ]]; then command=${command:+$command }$word; break; fi
        done
    done
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}
    if [[ $cur == = ]]; then
        cur=''
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    [[ $prev == -* ]] && value=$(_fmtool_option_value "${command:+$command }$prev")
    case $value in
        '') ;;
        @file) _fmtool_paths -f; return 0 ;;
        @dir) _fmtool_paths -d; return 0 ;;
        @text) return 0 ;;
        *) COMPREPLY=($(compgen -W "$value" -- "$cur")); return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_fmtool_options "$command")" -- "$cur"))
        return 0
    fi
    local subcommands=$(_fmtool_subcommands "$command")
    if [[ -n $subcommands ]]; then
        COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
        return 0
    fi
    case $(_fmtool_arguments "$command") in
        @file) _fmtool_paths -f ;;
        @dir) _fmtool_paths -d ;;
    esac
    return 0
}

complete -F _fmtool fmtool
