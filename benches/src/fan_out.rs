//! One operation over many items, by several tasks at once: how a store's
//! preload keeps many writes in flight, so it is not bound by one round
//! trip (or one disk wait) at a time.

use std::future::Future;
use std::sync::Arc;

use crate::BenchError;

/// Runs `op` on every item of `items` over `tasks` tokio tasks: task *t*
/// takes items *t*, *t* + `tasks`, *t* + 2 × `tasks`, ... in order. With
/// one task (or none) the items run in order on the calling task, as no
/// spawned task would help there. Returns the first error in task order.
pub async fn fan_out<T, F, Fut>(tasks: usize, items: Arc<[T]>, op: F) -> Result<(), BenchError>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BenchError>> + Send + 'static,
{
    if tasks <= 1 {
        for item in items.iter() {
            op(item.clone()).await?;
        }
        return Ok(());
    }
    let op = Arc::new(op);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (items, op) = (Arc::clone(&items), Arc::clone(&op));
            tokio::spawn(async move {
                for item in items.iter().skip(t).step_by(tasks) {
                    op(item.clone()).await?;
                }
                Ok::<_, BenchError>(())
            })
        })
        .collect();
    for handle in handles {
        handle.await.map_err(|e| BenchError::new("fan-out task", e))??;
    }
    Ok(())
}
