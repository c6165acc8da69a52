use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match blog::run(blog::config::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("blog: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
