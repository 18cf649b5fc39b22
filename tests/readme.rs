//! The README's examples must stay true: its contract example is a valid contract.

#[test]
fn the_readme_contract_example_is_valid() {
    let readme = include_str!("../README.md");
    let start = readme.find("```toml\n").expect("README has a TOML example") + "```toml\n".len();
    let len = readme[start..]
        .find("```")
        .expect("the TOML block is closed");
    let contract = gpuaudit::contract::Contract::parse(&readme[start..start + len], "README.md")
        .unwrap_or_else(|e| panic!("README contract example is invalid: {e}"));
    assert_eq!(contract.instance_type, "p5.48xlarge");
}
