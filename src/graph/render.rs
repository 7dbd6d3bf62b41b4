//! `pipe dag`: the instance graph as text, Graphviz dot or Mermaid.

use std::fmt::Write as _;

use super::Dag;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Dot,
    Mermaid,
}

fn variations(dag: &Dag, i: usize, all: usize) -> String {
    let v = &dag.instances[i].variations;
    if v.len() == all || (v.len() == 1 && v[0] == "default") {
        String::new()
    } else {
        format!(" {{{}}}", v.join(", "))
    }
}

pub(crate) fn render(dag: &Dag, format: Format, variation_count: usize) -> String {
    let mut out = String::new();
    match format {
        Format::Text => {
            for (i, inst) in dag.instances.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{} ({}){}",
                    inst.label(),
                    inst.uses(),
                    variations(dag, i, variation_count)
                );
                for &u in &inst.needs {
                    let _ = writeln!(out, "  <- {}", dag.instances[u].label());
                }
            }
        }
        Format::Dot => {
            out.push_str(
                "digraph pipeline {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
            );
            for (i, inst) in dag.instances.iter().enumerate() {
                let label = format!(
                    "{}\\n{}{}",
                    inst.label(),
                    inst.uses(),
                    variations(dag, i, variation_count)
                );
                let _ = writeln!(out, "  n{i} [label=\"{}\"];", label.replace('"', "\\\""));
            }
            for (i, inst) in dag.instances.iter().enumerate() {
                for &u in &inst.needs {
                    let _ = writeln!(out, "  n{u} -> n{i};");
                }
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for (i, inst) in dag.instances.iter().enumerate() {
                let label = format!(
                    "{}<br/>{}{}",
                    inst.label(),
                    inst.uses(),
                    variations(dag, i, variation_count)
                );
                let _ = writeln!(out, "  n{i}[\"{}\"]", label.replace('"', "#quot;"));
            }
            for (i, inst) in dag.instances.iter().enumerate() {
                for &u in &inst.needs {
                    let _ = writeln!(out, "  n{u} --> n{i}");
                }
            }
        }
    }
    out
}
